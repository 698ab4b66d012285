"""Left-object (dumping) check: something that arrives in a watched zone and stays still.

Three views of the scene at a small working size (grey, ``frame_width`` wide):

* the **empty scene** (reference): learnt only where the current frame matches it, so a
  thing put down never fades into it; a global gain (median ratio over matching pixels) is
  applied before comparing, so dimming or brightening the whole view changes nothing;
* the **short-term scene**: a running average with a time constant of ``moving_tau_s``;
  a pixel far from it is moving (people walking, a bag being carried);
* per pixel, how long it has differed from the empty scene while *not* moving: its
  **still age**. Moving over it (a passer-by hiding it) pauses the age; matching the empty
  scene again (the object was taken away) resets it.

Pixels still for ``settle_s`` form candidates (connected blobs, tracked by overlap). A
candidate still for ``dwell_s`` since it came to rest is checked once more before it is
reported, because most still differences are not rubbish:

* **size**: larger than ``max_area_share`` of the frame is a parked vehicle; taken in;
* **light**: the patch correlates with the empty scene (same texture, other brightness:
  a shadow, a lamp, a cloud) → taken in;
* **removed, not left**: the empty scene has the stronger edges along the blob's outline
  (a thing that used to be there was carried away) → taken in;
* **a person standing or sitting still**: their outline and pixels keep changing (box
  overlap with the settled box below ``min_overlap``, or mean grey change since settling
  above ``max_change``) → not reported yet; and, when the camera has a head detector, a
  head inside the box → not reported;
* **attended**: something moves right next to it (its owner is still there) → wait.

When more than a quarter of the zone differs at once, the camera moved (or the light
changed in a way no single gain explains): the empty scene starts again from that frame.

One report per object: a reported object stays marked until it is taken away (its pixels
match the empty scene again) or ``forget_s`` passes (then it joins the empty scene). Each
report carries the picture from ``before_s`` before the object came to rest, from a short
ring of JPEG frames (about one per second), so memory stays small on a Pi.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.camera.events import encode_jpeg
from edge.camera.geometry import Box, WorkGeometry, iou
from edge.camera.motion import global_gain
from firmware_config.camera import DumpingSettings, Polygon

log = logging.getLogger(__name__)

PersonCheck = Callable[[np.ndarray, Box], bool]
"""``(frame, box in frame pixels) -> True`` when a person is seen in the box."""

_HISTORY_STEP_S = 1.0
_STEADY_S = 10.0
_REMOVED_MARGIN = 1.5
_UNSTABLE_SHARE = 0.25
"""More of the zone than this differing from the empty scene at once is not objects."""


@dataclass(slots=True)
class LeftObject:
    """One object left behind, reported once."""

    box: Box
    """In pixels of the camera frame."""
    rested_at: float
    """Camera time (seconds) when it came to rest."""
    reported_at: float
    before_jpeg: bytes | None
    """The scene ``before_s`` before it came to rest (no boxes drawn), if still in memory."""
    confidence: float


_SAMPLE_STEP_S = 0.5


@dataclass(slots=True)
class _Candidate:
    box: Box
    """Working-size pixels."""
    seen_at: float
    before_jpeg: bytes | None
    samples: deque[tuple[float, Box, np.ndarray]] = field(default_factory=deque)
    """``(t, box, pixels)`` about every half second: how its shape went lately."""
    reported: bool = False
    rejected_until: float = 0.0

    def sample(self, t: float, small: np.ndarray, keep_s: float) -> None:
        if self.samples and t - self.samples[-1][0] < _SAMPLE_STEP_S:
            return
        x1, y1, x2, y2 = self.box
        self.samples.append((t, self.box, small[y1:y2, x1:x2].copy()))
        while len(self.samples) > 1 and t - self.samples[1][0] >= keep_s:
            self.samples.popleft()


@dataclass(slots=True)
class _History:
    """JPEG frames about a second apart, for the 'before' pictures."""

    keep_s: float
    max_width: int
    frames: deque[tuple[float, bytes]] = field(default_factory=deque)

    def add(self, frame: np.ndarray, t: float) -> None:
        if self.frames and t - self.frames[-1][0] < _HISTORY_STEP_S:
            return
        self.frames.append((t, encode_jpeg(frame, 150_000, self.max_width, 80)))
        while self.frames and t - self.frames[0][0] > self.keep_s:
            self.frames.popleft()

    def before(self, t: float) -> bytes | None:
        """The newest frame taken at or before ``t`` (else the oldest one kept)."""
        older = [jpeg for at, jpeg in self.frames if at <= t]
        if older:
            return older[-1]
        return self.frames[0][1] if self.frames else None


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two patches; 0 for flat patches (no texture)."""
    a = a.astype(np.float32) - a.mean()
    b = b.astype(np.float32) - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 1e-3 * a.size else 0.0


def _change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey change between two patches, their mean brightness set aside."""
    return float(np.abs((a - a.mean()) - (b - b.mean())).mean())


def _outline_contrast(img: np.ndarray, region: np.ndarray) -> float:
    """Mean |inside − outside| along the outline of ``region`` in ``img`` (local means).

    A thing put down stands out from what surrounds it now; a thing taken away stood out
    from what surrounded it before. Local means over a few pixels on either side of the
    outline, so tiles and gravel average out.
    """
    mask = region.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    inner = (mask - cv2.erode(mask, kernel, iterations=2)).astype(np.float32)
    outer = (cv2.dilate(mask, kernel, iterations=2) - mask).astype(np.float32)
    img = img.astype(np.float32)

    def local_mean(band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight = cv2.blur(band, (7, 7))
        return cv2.blur(img * band, (7, 7)) / np.maximum(weight, 1e-6), weight

    inside, w_in = local_mean(inner)
    outside, w_out = local_mean(outer)
    edge = cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = 0  # the patch's cut, not an outline
    on = (edge > 0) & (w_in > 0) & (w_out > 0)
    return float(np.abs(inside - outside)[on].mean()) if on.any() else 0.0


def _grow(box: Box, by: int, width: int, height: int) -> Box:
    x1, y1, x2, y2 = box
    return (max(0, x1 - by), max(0, y1 - by), min(width, x2 + by), min(height, y2 + by))


class LeftObjectDetector:
    """Finds objects left in the given zones; call :meth:`update` once per frame, in order."""

    def __init__(
        self,
        settings: DumpingSettings | None = None,
        zones: Sequence[Polygon] = (),
        person_check: PersonCheck | None = None,
        snapshot_width: int = 1280,
    ) -> None:
        self.settings = settings or DumpingSettings()
        self._zones = list(zones)
        self._person_check = person_check
        s = self.settings
        self._history = _History(s.settle_s + s.before_s + 3 * _HISTORY_STEP_S, snapshot_width)
        self._frame_size: tuple[int, int] | None = None
        self._work_size = (0, 0)
        self._scale = (1.0, 1.0)
        self._zone: np.ndarray | None = None
        self._candidates: list[_Candidate] = []
        self.reset()

    def reset(self) -> None:
        """Forget the scene (after a reconnect the view may have changed)."""
        self._reference: np.ndarray | None = None
        self._short: np.ndarray | None = None
        self._age: np.ndarray | None = None
        self._reported: np.ndarray | None = None
        self._reported_at: np.ndarray | None = None
        self._last_t: float | None = None
        self._candidates = []

    @property
    def candidates(self) -> int:
        """Still things being timed (for stats and tests)."""
        return len(self._candidates)

    def _configure(self, width: int, height: int) -> None:
        self._geometry = g = WorkGeometry.fit(width, height, self.settings.frame_width)
        self._frame_size, self._work_size, self._scale = g.frame_size, g.work_size, g.scale
        work_w, work_h = g.work_size
        self._zone = (g.mask(self._zones) > 0 if self._zones
                      else np.ones((work_h, work_w), bool))
        self._zone_pixels = max(1, int(np.count_nonzero(self._zone)))
        self.reset()

    def _small(self, frame: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(self._geometry.grey(frame), (3, 3), 0).astype(np.float32)

    def _to_frame(self, box: Box) -> Box:
        sx, sy = self._scale
        x1, y1, x2, y2 = box
        return (int(x1 * sx), int(y1 * sy), int(math.ceil(x2 * sx)), int(math.ceil(y2 * sy)))

    # -- per frame ---------------------------------------------------------------------------

    def update(self, frame: np.ndarray, t: float) -> list[LeftObject]:
        """Analyse one frame (BGR or grey) taken at ``t`` seconds; return new reports."""
        height, width = frame.shape[:2]
        if self._frame_size != (width, height):
            self._configure(width, height)
        self._history.add(frame, t)
        small = self._small(frame)
        if self._reference is None or self._last_t is None:
            self._reference, self._short = small.copy(), small.copy()
            self._age = np.zeros(small.shape, np.float32)
            self._reported = np.zeros(small.shape, bool)
            self._reported_at = np.zeros(small.shape, np.float32)
            self._last_t = t
            return []
        dt = min(max(t - self._last_t, 0.0), 1.0)
        self._last_t = t
        still, moving, differs = self._classify(small, dt)
        if np.count_nonzero(differs) > _UNSTABLE_SHARE * self._zone_pixels:
            # most of the zone differs at once: the camera moved or the light changed in a
            # way the gain does not explain; the empty scene is stale, start again from here
            self._rebase(small)
            return []
        blobs = self._blobs(still)
        self._track(blobs, small, t)
        return self._due(frame, small, moving, differs, t)

    def _rebase(self, small: np.ndarray) -> None:
        """The empty scene is stale once the view moved: start again from this frame."""
        assert self._reference is not None and self._short is not None
        assert self._age is not None and self._reported is not None
        self._reference[:] = small
        self._short[:] = small
        self._age[:] = 0.0
        self._reported[:] = False
        self._candidates = []

    def _classify(
        self, small: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Update the three views; return (settled still mask, moving, differs) masks."""
        s = self.settings
        assert self._reference is not None and self._short is not None
        assert self._age is not None and self._reported is not None
        moving = np.abs(small - self._short) > s.threshold
        cv2.accumulateWeighted(small, self._short, 1.0 - math.exp(-dt / s.moving_tau_s))
        gain = global_gain(small, self._reference, ~moving)
        expected = self._reference * gain
        delta = np.abs(small - expected)
        differs = (delta > s.threshold) & self._zone
        # learn only what is clearly empty: near the threshold, a dark bag on a dark kerb
        # would otherwise seep into the empty scene pixel by pixel
        busy = cv2.dilate((differs | moving).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        empty = ~busy & (delta < s.threshold / 2)
        # the empty scene follows the light where it is seen empty, and takes the gain in
        rate = 1.0 - math.exp(-dt / s.background_tau_s)
        self._reference[empty] += rate * (small[empty] - self._reference[empty])
        if abs(gain - 1.0) > 0.002:
            self._reference *= 1.0 + (gain - 1.0) * min(1.0, 4 * rate)
        age = self._age
        age[differs & ~moving] += dt
        age[~differs] = 0.0
        self._reported &= differs | moving
        return (age >= s.settle_s).astype(np.uint8), moving, differs

    def _blobs(self, still: np.ndarray) -> list[tuple[Box, int]]:
        still = cv2.morphologyEx(still, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        # fragments of one object (a dark bag on a dark base) are one object
        still = cv2.morphologyEx(still, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(still, connectivity=8)
        blobs: list[tuple[Box, int]] = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area >= self.settings.min_area:
                blobs.append(((x, y, x + w, y + h), area))
        return blobs

    def _track(self, blobs: list[tuple[Box, int]], small: np.ndarray, t: float) -> None:
        """Match blobs to candidates by overlap; new blobs start new candidates."""
        s = self.settings
        free = list(self._candidates)
        for box, _area in blobs:
            best = max(free, key=lambda c: iou(c.box, box), default=None)
            if best is not None and iou(best.box, box) >= 0.2:
                best.box, best.seen_at = box, t
                free.remove(best)
            else:
                before = self._history.before(t - s.settle_s - s.before_s)
                best = _Candidate(box=box, seen_at=t, before_jpeg=before)
                self._candidates.append(best)
            best.sample(t, small, self._steady_s)
        self._candidates = [c for c in self._candidates if t - c.seen_at <= s.lost_s]

    @property
    def _steady_s(self) -> float:
        """How far back a candidate's shape must have held (a still person's does not)."""
        return min(self.settings.dwell_s / 2, _STEADY_S)

    def _rested_for(self, box: Box) -> float:
        """How long the still pixels of the box have been still (their median age)."""
        assert self._age is not None
        x1, y1, x2, y2 = box
        ages = self._age[y1:y2, x1:x2]
        ages = ages[ages >= self.settings.settle_s]
        return float(np.median(ages)) if ages.size else 0.0

    def _due(
        self,
        frame: np.ndarray,
        small: np.ndarray,
        moving: np.ndarray,
        differs: np.ndarray,
        t: float,
    ) -> list[LeftObject]:
        s = self.settings
        reports: list[LeftObject] = []
        self._forget(t)
        for cand in self._candidates:
            if cand.reported or cand.seen_at < t:
                continue
            rested = self._rested_for(cand.box)
            if rested < s.dwell_s:
                continue
            if t < cand.rejected_until:
                continue
            verdict, why = self._judge(frame, small, moving, differs, cand)
            log.debug("candidate %s at %.1fs: %s", cand.box, t, why)
            if verdict is None:
                continue  # attended or still changing: look again on the next frame
            if not verdict:
                cand.rejected_until = t + s.dwell_s
                continue
            cand.reported = True
            x1, y1, x2, y2 = cand.box
            assert self._reported is not None and self._reported_at is not None
            self._reported[y1:y2, x1:x2] |= differs[y1:y2, x1:x2]
            self._reported_at[y1:y2, x1:x2] = t
            reports.append(
                LeftObject(self._to_frame(cand.box), t - rested, t, cand.before_jpeg, 1.0)
            )
        return reports

    def _forget(self, t: float) -> None:
        """Reported objects older than ``forget_s`` join the empty scene."""
        assert self._reported is not None and self._reported_at is not None
        old = self._reported & (t - self._reported_at > self.settings.forget_s)
        if old.any():
            assert self._reference is not None and self._short is not None
            self._reference[old] = self._short[old]
            self._reported &= ~old

    def _absorb(self, small: np.ndarray, box: Box) -> None:
        """Take what is inside ``box`` into the empty scene (it is not an object)."""
        assert self._reference is not None and self._age is not None
        x1, y1, x2, y2 = box
        self._reference[y1:y2, x1:x2] = small[y1:y2, x1:x2]
        self._age[y1:y2, x1:x2] = 0.0

    def _judge(
        self,
        frame: np.ndarray,
        small: np.ndarray,
        moving: np.ndarray,
        differs: np.ndarray,
        cand: _Candidate,
    ) -> tuple[bool | None, str]:
        """True: report it; False: not rubbish (taken in or set aside); None: wait; and why."""
        s = self.settings
        assert self._reference is not None and self._reported is not None
        x1, y1, x2, y2 = cand.box
        w, h = self._work_size
        area = int(np.count_nonzero(differs[y1:y2, x1:x2]))
        if self._reported[y1:y2, x1:x2].sum() > 0.5 * max(area, 1):
            cand.reported = True
            return False, "already reported"
        ax1, ay1, ax2, ay2 = _grow(cand.box, max(4, (x2 - x1) // 2), w, h)
        if moving[ay1:ay2, ax1:ax2].any():
            return None, "attended"
        if (x2 - x1) * (y2 - y1) > s.max_area_share * w * h:
            self._absorb(small, cand.box)
            return False, "too large"
        gx1, gy1, gx2, gy2 = _grow(cand.box, max(3, (x2 - x1) // 3, (y2 - y1) // 3), w, h)
        patch, ref = small[gy1:gy2, gx1:gx2], self._reference[gy1:gy2, gx1:gx2]
        inside = differs[gy1:gy2, gx1:gx2]
        corr = _correlation(patch[inside], ref[inside])
        if corr >= s.lighting_correlation:
            self._absorb(small, cand.box)
            return False, f"light (correlation {corr:.2f})"
        was, now = _outline_contrast(ref, inside), _outline_contrast(patch, inside)
        if was > now:
            # only a clear case heals the empty scene; a mixed one (its owner still beside
            # it) is looked at again
            if was > _REMOVED_MARGIN * now:
                self._absorb(small, cand.box)
                return False, f"removed (outline {was:.1f} before, {now:.1f} now)"
            return None, f"unclear (outline {was:.1f} before, {now:.1f} now)"
        _, settled_box, template = cand.samples[0]
        overlap = iou(cand.box, settled_box)
        if overlap < s.min_overlap:
            return False, f"shape changed (overlap {overlap:.2f})"
        sx1, sy1, sx2, sy2 = settled_box
        bx1, by1 = max(x1, sx1), max(y1, sy1)
        bx2, by2 = min(x2, sx2), min(y2, sy2)
        now = small[by1:by2, bx1:bx2]
        then = template[by1 - sy1 : by2 - sy1, bx1 - sx1 : bx2 - sx1]
        # brightness offsets cancel (a cloud since it settled is not a change of shape)
        change = _change(now, then) if now.size else 255.0
        if change > s.max_change:
            return False, f"moved (change {change:.1f})"
        if self._person_check is not None and self._person_check(frame, self._to_frame(cand.box)):
            return False, "a person"
        return True, f"left (correlation {corr:.2f}, change {change:.1f})"


