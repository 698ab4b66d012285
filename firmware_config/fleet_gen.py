"""Synthetic fleets for simulation and benchmarks: N node templates over Z zones."""

from __future__ import annotations

from pathlib import Path

import yaml


def synthetic_commune(commune: str, index: int, nodes: int, communes: int) -> str:
    """The commune of node ``index`` (1-based) when ``nodes`` are split over ``communes``
    in equal runs: ``commune`` itself for one, ``{commune}-01``… for several."""
    if communes <= 1:
        return commune
    per = -(-nodes // communes)
    return f"{commune}-{(index - 1) // per + 1:02d}"


def write_synthetic_templates(out: Path, nodes: int, commune: str = "xa-sim",
                              per_zone: int = 10, communes: int = 1) -> Path:
    """Write ``nodes`` node templates (file sinks) spread over zones of ``per_zone``, and
    over ``communes`` communes (zone codes are each commune's own, as in the field)."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(1, nodes + 1):
        zone = f"zone-{(i - 1) // per_zone + 1:03d}"
        doc = {"node_id": f"sim-{i:04d}",
               "commune": synthetic_commune(commune, i, nodes, communes),
               "name": f"Simulated point {i}", "zones": [zone],
               "audio": {"output": "file", "file_dir": "sink"}, "telemetry_interval_s": 30}
        (out / f"sim-{i:04d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out
