"""The node's cameras, wired to the rest of the agent.

One :class:`~edge.camera.worker.CameraWorker` per configured camera, each in its own
thread (OpenCV and the helmet model are CPU work that must not hold up the node's loop).
Their alerts become contract :class:`~mqtt_contract.Alert` messages, handed to the
loop for the outbox; their reminder requests become routine jobs for the local scheduler,
played only when nothing else is playing and outside quiet hours (the scheduler enforces
those; a reminder never interrupts).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.loop import Reactor
from edge.scheduler import Job, LocalScheduler
from mqtt_contract import Alert, Box, MediaRef, Priority

log = logging.getLogger(__name__)


def to_contract_alert(node: str, event: Any) -> Alert:
    """A camera worker's event as the wire payload (snapshot inline, base64)."""
    boxes = [Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3], label=str(b[4]),
                 confidence=min(1.0, max(0.0, float(b[5])))) for b in event.boxes]
    snapshot = base64.b64encode(event.snapshot_jpeg).decode() if event.snapshot_jpeg else None
    before = base64.b64encode(event.before_jpeg).decode() if event.before_jpeg else None
    return Alert(id=str(event.id), node=node, camera=event.camera, kind=event.kind, at=event.at,
                 confidence=min(1.0, max(0.0, float(event.confidence))), boxes=boxes,
                 snapshot_jpeg_b64=snapshot, before_jpeg_b64=before)


#: Longest a reminder's rendering may take (espeak-ng and ffmpeg; a few seconds on a Pi).
RENDER_TIMEOUT_S = 120.0


class ReminderClips:
    """Reminder audio per text, rendered once on the node by the content pipeline.

    Rendering runs in a child process (``python -m broadcasts.cli``): it loads scipy, pydub
    and the TTS engines, ≈ 90 MB resident that the agent would otherwise keep for as long
    as it runs (``benchmarks/camera.py``, whole agent, INT8 model: 255 → 186 MB).
    A rendered text is kept on disk under a name derived from it, so a restart reuses it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._refs: dict[str, tuple[MediaRef, Path]] = {}

    def get(self, text: str, clip: Path | None) -> tuple[MediaRef, Path]:
        key = str(clip) if clip else text
        with self._lock:
            if key not in self._refs:
                self._refs[key] = self._load(clip) if clip else self._render(text)
            return self._refs[key]

    def _render(self, text: str) -> tuple[MediaRef, Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(text.encode()).hexdigest()[:24]
        speech = self.directory / f"speech-{name}.mp3"
        if not speech.exists():
            render_in_child(text, speech)
        return self._load(speech)

    def _load(self, clip: Path) -> tuple[MediaRef, Path]:
        from broadcasts.encode import decode_to_wav
        from edge.audio_output import wav_duration

        data = clip.read_bytes()
        wav = self.directory / f"{hashlib.sha256(data).hexdigest()}.wav"
        self.directory.mkdir(parents=True, exist_ok=True)
        if not wav.exists():
            decode_to_wav(clip, wav)
        wav_data = wav.read_bytes()
        return MediaRef(sha256=hashlib.sha256(wav_data).hexdigest(), size=len(wav_data),
                        codec="wav", duration_s=wav_duration(wav)), wav


def render_in_child(text: str, target: Path) -> None:
    """Speak ``text`` to ``target`` (MP3, no chime, espeak-ng: a node is offline-first) with
    the content pipeline's own command, in a child process that gives its memory back."""
    spec = importlib.util.find_spec("broadcasts")  # locates the package without importing it
    env = dict(os.environ)
    if spec is not None and spec.origin:
        root = str(Path(spec.origin).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "broadcasts.cli", "--no-chime", "--engine", "espeak-ng",
               "-o", str(target), "--", text]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=RENDER_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"reminder rendering took over {RENDER_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0 or not target.exists():
        raise RuntimeError(f"reminder rendering failed: {done.stderr.strip()[-300:]}")


class CameraHost:
    def __init__(self, loop: Reactor, node: str, cameras: list[Any],
                 scheduler: LocalScheduler, put_media: Callable[[MediaRef, Path], object],
                 send_alert: Callable[[Alert], None], clips_dir: Path) -> None:
        self.loop, self.node, self.cameras, self.scheduler = loop, node, cameras, scheduler
        self.put_media, self.send_alert = put_media, send_alert
        self.clips = ReminderClips(clips_dir)
        self.workers: list[Any] = []
        self.reminders_played = 0

    def start(self) -> None:
        from edge.camera.worker import CameraWorker

        for cam in self.cameras:
            if not cam.enabled:
                continue
            worker = CameraWorker(cam, self._on_alert, self._request_reminder)
            worker.start()
            self.workers.append(worker)
        if self.workers:
            log.info("%d camera workers running", len(self.workers))
            threading.Thread(target=self._prepare_reminders, name="camera-reminders",
                             daemon=True).start()

    def _prepare_reminders(self) -> None:
        """Render the cameras' reminders once at start (kept on disk for later starts), so
        the first reminder plays when it is due, not after its rendering."""
        for cam in self.cameras:
            for kind, reminder in cam.reminders.items() if cam.enabled else ():
                try:
                    self.clips.get(reminder.text, reminder.clip)
                except Exception:
                    log.exception("cannot prepare the %s reminder for %s", kind, cam.id)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stats(self) -> list[dict]:
        return [w.stats().as_dict() for w in self.workers]

    def _on_alert(self, event: Any) -> None:
        """On the camera's thread: the alert is built here and queued on the loop."""
        self.loop.call_soon_threadsafe(self.send_alert, to_contract_alert(self.node, event))

    def _request_reminder(self, camera_id: str, kind: str) -> bool:
        """Play the camera's reminder now, unless anything else is playing (on the
        camera's thread: the clip is prepared here, the job handed to the loop)."""
        cam = next((c for c in self.cameras if c.id == camera_id), None)
        reminder = cam.reminders.get(kind) if cam else None
        if reminder is None or self.scheduler.now_playing() is not None:
            return False
        try:
            ref, path = self.clips.get(reminder.text, reminder.clip)
        except Exception:
            log.exception("cannot prepare the %s reminder for %s", kind, camera_id)
            return False
        self.put_media(ref, path)
        job = Job(f"reminder-{camera_id}-{uuid.uuid4().hex[:12]}", ref, time.time(),
                  Priority.ordinary, f"reminder {kind} ({camera_id})")
        self.loop.call_soon_threadsafe(self.scheduler.submit, job)
        self.reminders_played += 1
        return True
