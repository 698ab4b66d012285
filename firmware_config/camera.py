"""Settings of one camera on a node (pydantic v2).

Everything camera-specific lives here so the node config only needs
``cameras: list[CameraConfig]``. Models forbid unknown keys, so a typo in the YAML fails with
the name of the field instead of being silently ignored.

Polygons (ignore-masks and zones) are lists of ``[x, y]`` points, either normalised (every
coordinate within 0–1, so they survive a change of stream resolution) or in pixels of the
camera's frames (any coordinate above 1). ``polygon_to_pixels`` resolves both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mqtt_contract import DEFAULT_TIMEZONE, QuietWindow, check_timezone

Point = tuple[float, float]
Polygon = list[Point]
CheckName = Literal["helmet", "motion_in_zone", "dumping"]

DEFAULT_REMINDER_TEXT = "Xin vui lòng đội mũ bảo hiểm khi đi xe máy."
DUMPING_REMINDER_TEXT = "Đề nghị không vứt rác, đổ rác không đúng nơi quy định."


class _Strict(BaseModel):
    """Base: reject unknown keys so misspelt settings are reported, not ignored."""

    model_config = ConfigDict(extra="forbid")


def _check_polygon(points: Polygon) -> Polygon:
    """A polygon needs three corners and no negative coordinate to mean anything."""
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    for x, y in points:
        if x < 0 or y < 0:
            raise ValueError(f"polygon point ({x}, {y}) is negative")
    return points


def is_normalised(points: Polygon) -> bool:
    """True when every coordinate is within 0–1 (then they are fractions of the frame)."""
    return all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in points)


def polygon_to_pixels(points: Polygon, width: int, height: int) -> list[tuple[int, int]]:
    """Resolve a configured polygon to integer pixel corners of a ``width``×``height`` frame."""
    if is_normalised(points):
        return [(round(x * (width - 1)), round(y * (height - 1))) for x, y in points]
    return [(round(x), round(y)) for x, y in points]


class ZoneConfig(_Strict):
    """A named area; motion inside it can raise a ``motion_in_zone`` alert, and with
    ``dumping: true`` an object left in it raises a ``dumping`` alert."""

    name: str = Field(min_length=1, max_length=64)
    polygon: Polygon
    min_area: int = Field(
        default=150,
        ge=1,
        description="Moving pixels (at the motion working size) inside the zone to count.",
    )
    dumping: bool = Field(
        default=False, description="Watch this zone for objects left behind (check dumping)."
    )

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(cls, points: Polygon) -> Polygon:
        return _check_polygon(points)


class MotionSettings(_Strict):
    """Parameters of ``edge.camera.motion.MotionDetector``; the defaults are the tuned ones."""

    frame_width: int = Field(
        default=320,
        ge=64,
        le=1920,
        description="Frames are downscaled to this width (aspect kept) before any work.",
    )
    threshold: int = Field(
        default=26, ge=1, le=255, description="Grey-level difference from the background."
    )
    min_area: int = Field(
        default=40, ge=1, description="Smallest blob, in pixels at the working size."
    )
    open_kernel: int = Field(default=3, ge=0, le=15, description="Opening removes speckle.")
    close_kernel: int = Field(
        default=0, ge=0, le=15, description="Closing joins fragments (0: off, keeps boxes tight)."
    )
    blur_kernel: int = Field(default=0, ge=0, le=15, description="Gaussian pre-blur (0: off).")
    alpha: float = Field(
        default=0.02, gt=0, le=1, description="Background learning rate where nothing moves."
    )
    slow_alpha: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="Learning rate everywhere, so stopped objects fade into the background.",
    )
    absorb_frames: int = Field(
        default=90,
        ge=0,
        le=255,
        description="A pixel moving this many frames in a row is learnt (ghosts, parked cars).",
    )
    lighting_threshold: float = Field(
        default=0.35,
        gt=0,
        le=1,
        description="Share of the frame changing at once that is taken as a lighting change.",
    )
    min_duration_s: float = Field(
        default=0.1, ge=0, le=10, description="Motion must last this long before it counts."
    )
    warmup_frames: int = Field(
        default=3, ge=0, description="Frames learnt before the first boxes are reported."
    )


class HelmetSettings(_Strict):
    """The helmet check: model, decoding, confirmation and tracking."""

    model: Path | None = Field(
        default=None, description="YOLO ONNX file (user-supplied); None: motion only."
    )
    input_size: int = Field(default=320, ge=64, le=1280, description="Model input, square.")
    runtime: Literal["onnxruntime", "opencv"] = "onnxruntime"
    threads: int = Field(default=2, ge=1, le=16)
    lean_memory: bool = Field(
        default=True,
        description=(
            "onnxruntime without its memory arena and memory-pattern planning, freed heap "
            "returned to the OS after loading and after each run (docs/camera.md, Memory on "
            "a Pi); off: onnxruntime's defaults, which keep ≈ 100 MB more resident."
        ),
    )
    recheck: Path | None = Field(
        default=None,
        description=(
            "Second-stage weights (.npz from `loaxa model train-recheck`) that re-decide each "
            "head from its crop; None: the detector decides alone (docs/camera.md)."
        ),
    )
    confidence: float = Field(default=0.25, gt=0, lt=1, description="Detector score floor.")
    nms_iou: float = Field(default=0.7, gt=0, le=1)
    class_agnostic_nms: bool = Field(
        default=False,
        description="One NMS across classes (measured 0.750 vs 0.757 F1 per class on dev).",
    )
    alert_confidence: float = Field(
        default=0.5, gt=0, lt=1, description="A 'Without Helmet' hit counts towards an alert."
    )
    confirm_hits: int = Field(
        default=3, ge=1, description="Hits on one track before a violation is confirmed."
    )
    max_rate_hz: float = Field(
        default=5.0, gt=0, le=60, description="Cap on model runs per second per camera."
    )
    use_regions: bool = Field(
        default=True, description="Run on crops around motion when that is no dearer."
    )
    max_regions: int = Field(
        default=1, ge=1, le=8, description="More motion clusters than this: whole frame."
    )
    region_margin: float = Field(default=0.25, ge=0, le=2)
    track_iou: float = Field(default=0.1, ge=0, le=1)
    track_max_age_s: float = Field(default=2.0, gt=0)


class DumpingSettings(_Strict):
    """The left-object (dumping) check: ``edge.camera.left_object.LeftObjectDetector``.

    Sizes are in pixels of the working frame (``frame_width`` wide), times in seconds of
    the camera's clock, so the check behaves the same at any frame rate.
    """

    dwell_s: float = Field(
        default=60.0, gt=0, le=3600, description="An object still this long is reported."
    )
    frame_width: int = Field(default=320, ge=64, le=1920, description="Working width.")
    threshold: int = Field(
        default=22, ge=1, le=255, description="Grey-level difference from the empty scene."
    )
    min_area: int = Field(default=20, ge=1, description="Smallest object, working pixels.")
    max_area_share: float = Field(
        default=0.04,
        gt=0,
        le=1,
        description="Larger still things (a parked car or motorbike) are not rubbish.",
    )
    settle_s: float = Field(
        default=1.0, ge=0, le=60, description="Still this long before it is a candidate."
    )
    moving_tau_s: float = Field(
        default=0.4, gt=0, le=10, description="Time constant of the short-term scene."
    )
    background_tau_s: float = Field(
        default=8.0, gt=0, description="Time constant of learning where the scene is empty."
    )
    lost_s: float = Field(
        default=1.5, gt=0, description="A candidate unseen this long is gone (taken away)."
    )
    min_overlap: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Its box now vs when it settled (IoU): below this it changed shape.",
    )
    max_change: float = Field(
        default=12.0,
        gt=0,
        le=255,
        description="Mean grey change of its pixels since it settled: above, it moved.",
    )
    lighting_correlation: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Same texture as the empty scene at this correlation: light, not a thing.",
    )
    before_s: float = Field(
        default=2.0, ge=0, le=30, description="The 'before' picture predates settling by this."
    )
    forget_s: float = Field(
        default=3600.0, gt=0, description="A reported object joins the background after this."
    )


class QuietHours(QuietWindow):
    """Quiet hours in a node or camera config: the contract's window, strict about keys."""

    model_config = ConfigDict(extra="forbid")


class ReminderConfig(_Strict):
    """What the speaker says when a violation of one kind is confirmed."""

    text: str = Field(default=DEFAULT_REMINDER_TEXT, min_length=1)
    clip: Path | None = Field(default=None, description="Pre-rendered audio clip, if any.")


class CooldownSettings(_Strict):
    """Cooldowns stop one rider, or a busy road, from flooding alerts and the speaker."""

    per_track_s: float = Field(default=300.0, ge=0, description="Re-alert the same track after.")
    per_camera_s: float = Field(
        default=15.0, ge=0, description="Between alerts of one kind on this camera."
    )
    reminder_s: float = Field(default=60.0, ge=0, description="Between spoken reminders.")


class ReconnectSettings(_Strict):
    """Exponential backoff when a stream cannot be opened or drops."""

    initial_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=30.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    read_timeout_s: float = Field(default=10.0, gt=0, description="No frame for this long: drop.")


class SnapshotSettings(_Strict):
    """JPEG of an alert: boxes drawn, size-capped for the MQTT uplink."""

    max_bytes: int = Field(default=200_000, ge=10_000)
    max_width: int = Field(default=1280, ge=160)
    quality: int = Field(default=85, ge=30, le=100)


class CameraConfig(_Strict):
    """One camera: where frames come from and what the node checks on them."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str | None = None
    enabled: bool = True
    source: str | int = Field(
        description="rtsp://…, http://…, a USB index (0) or a video file (looped)."
    )
    loop: bool = Field(default=True, description="Loop a video file at its own frame rate.")
    fps: float = Field(default=15.0, gt=0, le=60, description="Cap on frames processed.")
    checks: list[CheckName] = Field(default_factory=lambda: ["helmet"])
    masks: list[Polygon] = Field(default_factory=list, description="Areas motion ignores.")
    zones: list[ZoneConfig] = Field(default_factory=list)
    motion: MotionSettings = Field(default_factory=MotionSettings)
    helmet: HelmetSettings = Field(default_factory=HelmetSettings)
    cooldowns: CooldownSettings = Field(default_factory=CooldownSettings)
    quiet_hours: list[QuietHours] = Field(default_factory=list)
    timezone: str = DEFAULT_TIMEZONE
    dumping: DumpingSettings = Field(default_factory=DumpingSettings)
    reminders: dict[str, ReminderConfig] = Field(
        default_factory=lambda: {
            "no_helmet": ReminderConfig(),
            "dumping": ReminderConfig(text=DUMPING_REMINDER_TEXT),
        }
    )
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)

    @field_validator("masks")
    @classmethod
    def _masks_are_polygons(cls, masks: list[Polygon]) -> list[Polygon]:
        for polygon in masks:
            _check_polygon(polygon)
        return masks

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, source: str | int) -> str | int:
        if isinstance(source, int):
            if source < 0:
                raise ValueError("a USB camera index cannot be negative")
            return source
        if not source.strip():
            raise ValueError("source is empty")
        return int(source) if source.isdigit() else source

    @field_validator("timezone")
    @classmethod
    def _timezone_known(cls, name: str) -> str:
        return check_timezone(name)

    @model_validator(mode="after")
    def _checks_have_what_they_need(self) -> CameraConfig:
        if len(set(self.checks)) != len(self.checks):
            raise ValueError("checks: a check is listed twice")
        if "motion_in_zone" in self.checks and not self.zones:
            raise ValueError("checks: motion_in_zone needs at least one entry in zones")
        if "dumping" in self.checks and not any(z.dumping for z in self.zones):
            raise ValueError("checks: dumping needs a zone with dumping: true")
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError("zones: zone names must be unique")
        if self.reconnect.max_s < self.reconnect.initial_s:
            raise ValueError("reconnect.max_s must be >= reconnect.initial_s")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The camera's time zone, for its quiet hours."""
        return ZoneInfo(self.timezone)
