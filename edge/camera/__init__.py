"""Camera pipeline of a loaxa node: capture, motion, helmet check, alerts, reminders.

See ``docs/camera.md``. Public entry points: :class:`CameraWorker` (one thread per camera),
:class:`CameraPipeline` (the per-frame logic, thread-free), :class:`CameraAlert`.
"""

from edge.camera.events import CameraAlert
from edge.camera.motion import MotionDetector, MotionResult
from edge.camera.pipeline import CameraPipeline
from edge.camera.worker import CameraWorker, WorkerStats

__all__ = [
    "CameraAlert",
    "CameraPipeline",
    "CameraWorker",
    "MotionDetector",
    "MotionResult",
    "WorkerStats",
]
