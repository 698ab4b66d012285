"""A finished live session with its recording, made through the real path: the
controller's desk opens a session, ffmpeg reads a WAV as its source, the feed sends the
chime and the sound, the speaker ends it (as the page's stop does), and the desk keeps
the recording (Ogg/Opus in the media store, an upload row, the session's ``recording``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from controller.domain import Targets
from controller.models import LiveBroadcast
from mqtt_contract import LiveSource
from tests.conftest import wait_for
from tests.live.signals import speechlike, write_wav


def recorded_session(runtime: Any, folder: Path, *, title: str, actor: str,
                     nodes: tuple[str, ...] = ("node-1",), commune: str | None = "xa-demo",
                     seconds: float = 5.0, seed: int = 5) -> LiveBroadcast:
    """Open a session whose source is a WAV of speech-like sound, read at its own pace as
    a speaker would say it (its first seconds fall under the chime and are not sent, as
    in a real session); ``actor`` ends it after ``seconds``; wait for its recording to be
    kept; return its row."""
    wav = write_wav(folder / f"source-{seed}.wav", speechlike(seconds + 10, seed=seed))
    opened = runtime.live.open(Targets.of(nodes=nodes), title, LiveSource.microphone, actor,
                               str(wav), realtime=True, commune=commune)
    session_id = opened.session.id
    time.sleep(seconds)
    runtime.live.close(session_id, actor)

    def kept() -> LiveBroadcast | None:
        with runtime.db.session() as s:
            record = s.get(LiveBroadcast, session_id)
            if record is not None and record.recording_sha256:
                s.expunge(record)
                return record
            return None

    wait_for(kept, seconds + 20, what="the session to end and its recording to be kept")
    record = kept()
    assert record is not None
    return record
