"""A Raspberry Pi installs loaxa[edge]: the node must not need the controller's packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.conftest import REPO

SERVER_ONLY = ("fastapi", "sqlalchemy", "alembic", "uvicorn", "apscheduler", "psycopg")


def test_edge_agent_imports_no_server_packages() -> None:
    code = ("import sys, edge.agent, edge.camera.host, edge.camera.worker, firmware_config.schema;"
            f"print([m for m in {SERVER_ONLY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_edge_extra_leaves_out_the_server_packages() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    edge = " ".join(meta["optional-dependencies"]["edge"] + meta["dependencies"]).lower()
    assert not [p for p in SERVER_ONLY if p in edge]
    assert "fastapi" in " ".join(meta["optional-dependencies"]["controller"])


DEVELOPMENT_ONLY = ("devtools", "sklearn", "torch", "onnx")


def test_edge_imports_no_development_tools() -> None:
    """Training and quantising live in devtools/ (extras train/quantize), never on a Pi."""
    code = ("import sys, edge.agent, edge.camera.host, edge.camera.worker, edge.camera.recheck;"
            f"print([m for m in {DEVELOPMENT_ONLY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    edge = " ".join(meta["optional-dependencies"]["edge"]).lower()
    assert "scikit-learn" not in edge and "torch" not in edge
    assert "scikit-learn" in " ".join(meta["optional-dependencies"]["train"])
