"""A node never loads the content pipeline's rendering (scipy, pydub, TTS engines: ≈ 90 MB
resident a Pi never gets back): clips are decoded with ``broadcasts.encode`` alone and a
camera's reminder is rendered in a child process (edge/camera/host.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NODE_WORK = """
import json, sys
from pathlib import Path
from edge.audio_output import FileSink
from edge.camera.host import ReminderClips

work = Path(sys.argv[1])
ref, wav = ReminderClips(work / "reminders").get(sys.argv[2], None)
clip = FileSink(work / "sink", realtime=False).prepare(wav, 80, work / "prepared")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"scipy", "pydub", "gtts",
               "requests"} or m.startswith(("broadcasts.assemble", "broadcasts.tts")))
print(json.dumps({"codec": str(ref.codec), "duration_s": ref.duration_s, "size": ref.size,
                  "prepared_s": clip.duration_s, "heavy": heavy}))
"""


@pytest.mark.parametrize("text", ["Đề nghị không vứt rác, đổ rác không đúng nơi quy định.",
                                  "-- một câu bắt đầu bằng gạch ngang"])
def test_a_node_renders_and_plays_a_reminder_without_loading_rendering(tmp_path: Path,
                                                                        text: str) -> None:
    done = subprocess.run([sys.executable, "-c", NODE_WORK, str(tmp_path), text],
                          capture_output=True, text=True, cwd=REPO, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [], f"the node process loaded {got['heavy']}"
    assert got["codec"] == "wav" and got["size"] > 10_000
    assert 1.0 < got["duration_s"] < 15 and abs(got["prepared_s"] - got["duration_s"]) < 0.2
    assert len(list((tmp_path / "reminders").glob("speech-*.mp3"))) == 1  # kept for a restart


def test_a_reminder_that_cannot_be_rendered_is_an_error_not_a_hang(tmp_path: Path,
                                                                  monkeypatch) -> None:
    from edge.camera import host

    monkeypatch.setattr(host.sys, "executable", "/bin/false")
    with pytest.raises(RuntimeError, match="rendering failed"):
        host.ReminderClips(tmp_path).get("Xin vui lòng đội mũ bảo hiểm.", None)
