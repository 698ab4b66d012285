"""Synthetic fleets for simulation and benchmarks: N node templates over Z zones."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_synthetic_templates(out: Path, nodes: int, commune: str = "xa-sim",
                              per_zone: int = 10) -> Path:
    """Write ``nodes`` node templates (file sinks) spread over zones of ``per_zone``."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(1, nodes + 1):
        zone = f"zone-{(i - 1) // per_zone + 1:03d}"
        doc = {"node_id": f"sim-{i:04d}", "commune": commune, "name": f"Simulated point {i}",
               "zones": [zone], "audio": {"output": "file", "file_dir": "sink"},
               "telemetry_interval_s": 30}
        (out / f"sim-{i:04d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out
