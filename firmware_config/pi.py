"""A Raspberry Pi provisioned in one step: the SD-card bundle of one node.

``bundles/<node>.tar.gz`` holds one folder, ``loaxa/``, to copy onto the card's boot
partition: the node's config (paths for a Pi: state under /var/lib/loaxa, credentials
beside the config in /etc/loaxa), its password, client certificate and key, the fleet
CA, the systemd unit and the first-boot script (firmware_config/templates/firstboot.sh).
Nothing of another account is in it: a stolen card gives one node's credentials, which
``loaxa fleet revoke`` takes back.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import yaml

from firmware_config.provision import (
    NODE_CA,
    NODE_CERT,
    NODE_KEY,
    NODE_PASSWORD,
    ProvisionedFleet,
    render_systemd_unit,
)
from mqtt_contract import SOFTWARE_VERSION

TEMPLATES = Path(__file__).with_name("templates")
PI_CONF_DIR = Path("/etc/loaxa")
PI_STATE_DIR = Path("/var/lib/loaxa")
PI_EXECUTABLE = "/opt/loaxa/.venv/bin/loaxa"
NTP_SERVERS = "0.vn.pool.ntp.org 1.vn.pool.ntp.org 2.asia.pool.ntp.org"
SECRET_FILES = (NODE_PASSWORD, NODE_KEY)


def pi_config(node_yaml: Path) -> str:
    """The node's YAML for a Pi: state in the unit's StateDirectory (the only writable
    place under ProtectSystem=strict); credential paths stay relative to /etc/loaxa."""
    doc = yaml.safe_load(node_yaml.read_text(encoding="utf-8"))
    doc["storage_dir"] = str(PI_STATE_DIR / "data")
    audio = doc.setdefault("audio", {})
    if audio.get("output", "file") == "file":
        audio["file_dir"] = str(PI_STATE_DIR / "sink")
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def render_firstboot(pip_spec: str = f"loaxa[edge]=={SOFTWARE_VERSION}",
                     ntp_servers: str = NTP_SERVERS) -> str:
    text = (TEMPLATES / "firstboot.sh").read_text()
    return text.replace("@PIP_SPEC@", pip_spec).replace("@NTP_SERVERS@", ntp_servers)


def bundle_files(fleet: ProvisionedFleet, node: str) -> dict[str, tuple[bytes, int]]:
    """name → (content, mode) of everything in the node's bundle."""
    node_dir = fleet.node_configs[node].parent
    files: dict[str, tuple[bytes, int]] = {
        "node.yaml": (pi_config(fleet.node_configs[node]).encode(), 0o600),
        "loaxa-edge.service": (render_systemd_unit(PI_CONF_DIR / "node.yaml",
                                                   PI_EXECUTABLE).encode(), 0o644),
        "firstboot.sh": (render_firstboot().encode(), 0o755),
    }
    for name in (NODE_PASSWORD, NODE_CA, NODE_CERT, NODE_KEY):
        files[name] = ((node_dir / name).read_bytes(), 0o600 if name in SECRET_FILES else 0o644)
    return files


def write_bundle(fleet: ProvisionedFleet, node: str) -> Path:
    """Write ``bundles/<node>.tar.gz`` (mode 0600: it holds the node's secrets)."""
    out = fleet.root / "bundles" / f"{node}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.parent.chmod(0o700)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, (data, mode) in sorted(bundle_files(fleet, node).items()):
            info = tarfile.TarInfo(f"loaxa/{name}")
            info.size, info.mode, info.uname, info.gname = len(data), mode, "root", "root"
            tar.addfile(info, io.BytesIO(data))
    from firmware_config.pki import write_private

    write_private(out, buffer.getvalue())
    return out
