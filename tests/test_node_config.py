"""Node configuration fails fast, naming the field; provisioning is idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from firmware_config.broker import hash_password
from firmware_config.provision import provision, render_systemd_unit
from firmware_config.schema import ConfigError, load_node_config
from tests.conftest import EXAMPLES


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def test_examples_are_valid_three_nodes_two_zones() -> None:
    configs = [load_node_config(p) for p in sorted(EXAMPLES.glob("*.yaml"))]
    assert len(configs) == 3
    assert {z for c in configs for z in c.zones} == {"thon-1", "thon-2"}


@pytest.mark.parametrize("doc,field", [
    ({"commune": "xa"}, "node_id"),
    ({"node_id": "Bad Id", "commune": "xa"}, "node_id"),
    ({"node_id": "n", "commune": "xa", "mqtt": {"port": 70000}}, "mqtt.port"),
    ({"node_id": "n", "commune": "xa", "audio": {"output": "speaker"}}, "audio.output"),
    ({"node_id": "n", "commune": "xa", "timezone": "Mars/Olympus"}, "timezone"),
    ({"node_id": "n", "commune": "xa", "volum": 3}, "volum"),
    ({"node_id": "n", "commune": "xa", "quiet_hours": {"start": "25:00"}}, "quiet_hours.start"),
])
def test_wrong_config_names_the_field(tmp_path: Path, doc: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_node_config(write(tmp_path, doc))
    assert field in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_not_yaml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_node_config(write(tmp_path, "a: [b"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_node_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_node_config(write(tmp_path, "- 1\n- 2\n"))


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = load_node_config(write(tmp_path, {"node_id": "n", "commune": "xa"}))
    assert cfg.storage_dir == tmp_path / "data"
    assert cfg.audio.file_dir == tmp_path / "sink"


def test_provisioning_keeps_passwords_and_writes_acl(tmp_path: Path) -> None:
    first = provision(EXAMPLES, tmp_path, 18000)
    pw_file = first.node_configs["node-1"].parent / "mqtt.pass"
    pw, cert = pw_file.read_text(), (pw_file.parent / "client.crt").read_bytes()
    again = provision(EXAMPLES, tmp_path, 18000)
    assert pw_file.read_text() == pw and (pw_file.parent / "client.crt").read_bytes() == cert
    assert first.node_configs == again.node_configs
    dynsec = (tmp_path / "broker" / "dynamic-security.json").read_text()
    assert '"topic": "loaxa/v1/xa-demo/zone/thon-1/cmd"' in dynsec
    assert '"topic": "loaxa/v1/xa-demo/node/node-3/alert"' in dynsec
    assert pw.strip() not in dynsec  # only its PBKDF2 hash
    assert load_node_config(first.node_configs["node-1"]).mqtt.read_password() == pw.strip()
    unit = render_systemd_unit(first.node_configs["node-1"])
    assert f"edge run --config {first.node_configs['node-1']}" in unit


def test_password_hash_is_mosquitto_format() -> None:
    h = hash_password("secret", salt=b"0123456789ab")
    assert h.startswith("$7$101$") and h.count("$") == 4
