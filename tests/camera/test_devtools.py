"""Development tools stay out of the runtime: a node never imports ``devtools``."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_camera_runtime_does_not_import_devtools() -> None:
    code = ("import sys, edge.camera, edge.camera.worker, edge.camera.pipeline, edge.camera.host;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'devtools'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_eval_commands_come_from_devtools() -> None:
    from loaxa_cli import app

    groups = {g.name: g.typer_instance for g in app.registered_groups}
    assert groups["eval"].registered_commands
    assert groups["eval"].registered_commands[0].callback.__module__ == "devtools.camera.cli"
