"""A node's resident memory before and after it plays: the player path alone, no camera.

    .venv/bin/python benchmarks/node_memory.py

A fresh child process imports the edge agent (what every node holds), then prepares one
announcement for its speaker as the scheduler does (``FileSink.prepare``: MP3 → WAV at the
node's volume) and prints VmRSS before and after, and which of the content pipeline's
rendering modules (scipy, pydub, gTTS, requests) it loaded. The MP3 is rendered first by the
content pipeline's own command in another process, so the measured one does no rendering.
Until 2026-12-06 decoding loaded the whole renderer: 37 → 122 MB; now 37 → 37–48
(camera.md, "Memory on a Pi").

The last line printed is JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = "Thông báo: sáng mai thôn Đông họp lúc bảy giờ tại nhà văn hoá."

CHILD = """
import json, sys
from pathlib import Path

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

from edge.agent import EdgeAgent  # noqa: F401  (what every node imports)
from edge.audio_output import FileSink

before = rss()
work = Path(sys.argv[2])
clip = FileSink(work / "sink", realtime=False).prepare(Path(sys.argv[1]), 80, work / "prepared")
heavy = sorted({m.split(".")[0] for m in sys.modules
                if m.split(".")[0] in {"scipy", "pydub", "gtts", "requests"}})
print(json.dumps({"rss_imported_mb": round(before, 1), "rss_after_clip_mb": round(rss(), 1),
                  "clip_s": round(clip.duration_s, 2), "rendering_modules_loaded": heavy}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="loaxa-node-memory-") as tmp:
        mp3 = Path(tmp) / "announcement.mp3"
        subprocess.run(
            [sys.executable, "-m", "broadcasts.cli", "--engine", "espeak-ng", "-o", str(mp3),
             "--", TEXT],
            check=True, cwd=REPO, capture_output=True,
        )  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(mp3), tmp],
            check=True, cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"node agent imported: {result['rss_imported_mb']} MB; after preparing one "
        f"{result['clip_s']} s announcement: {result['rss_after_clip_mb']} MB"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
