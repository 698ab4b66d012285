"""An alert's picture as evidence: the snapshot with its boxes labelled in Vietnamese and a
caption band saying what, when, where and which camera, drawn on the server.

Drawn here rather than on the node: OpenCV's built-in fonts have no Vietnamese letters,
so a node draws only the coloured boxes and the words are added with Pillow and a font
that has them (DejaVu Sans, Debian's ``fonts-dejavu-core``). Names, never ids.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from controller.localtime import local

log = logging.getLogger(__name__)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
BOX_LABELS = {"without_helmet": "Không đội mũ", "with_helmet": "Có mũ bảo hiểm",
              "left_object": "Vật bị bỏ lại", "person": "Người", "motion": "Chuyển động"}
BOX_COLOURS = {"without_helmet": (220, 30, 30), "with_helmet": (30, 160, 60)}
DEFAULT_COLOUR = (240, 170, 0)
MAX_SIDE = 4096
"""A snapshot larger than this is refused (the node bounds its snapshots far below)."""


@dataclass(frozen=True)
class Caption:
    """What the evidence says, in words for people."""

    kind: str
    place: str
    camera: str
    at: datetime
    confidence: float

    def lines(self) -> list[str]:
        when = local(self.at)
        assert when is not None
        return [f"{self.kind} · độ tin cậy {round(self.confidence * 100)}%",
                f"Nơi: {self.place} · Camera: {self.camera}",
                f"Lúc: {when:%H:%M:%S ngày %d/%m/%Y} (giờ Việt Nam)"]


def box_label(label: str) -> str:
    """A detector's class in Vietnamese ("Without Helmet" and ``without_helmet`` alike)."""
    key = label.strip().lower().replace(" ", "_").replace("-", "_")
    return BOX_LABELS.get(key, "Đối tượng")


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = BOLD if bold else FONT
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # no DejaVu: Pillow's own font (may lack some Vietnamese letters)
        log.warning("font %s missing (apt-get install fonts-dejavu-core)", path)
        return ImageFont.load_default(size)


def annotate(jpeg: bytes, boxes: list[dict], caption: Caption) -> bytes:
    """The snapshot, boxes labelled, with the caption in a band below the picture (the
    picture itself is not covered)."""
    image = Image.open(io.BytesIO(jpeg))
    if max(image.size) > MAX_SIDE:
        raise ValueError("snapshot too large")
    image = image.convert("RGB")
    width, height = image.size
    scale = max(1.0, width / 640)
    text = font(int(14 * scale))
    draw = ImageDraw.Draw(image)
    for b in boxes:
        key = str(b.get("label", "")).strip().lower().replace(" ", "_")
        colour = BOX_COLOURS.get(key, DEFAULT_COLOUR)
        x1, y1, x2, y2 = (float(b[k]) for k in ("x1", "y1", "x2", "y2"))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=max(2, int(2 * scale)))
        score = round(float(b.get("confidence", 0)) * 100)
        words = f"{box_label(str(b.get('label', '')))} {score}%"
        left, top, right, bottom = draw.textbbox((0, 0), words, font=text)
        ty = y1 - (bottom - top) - 6 if y1 > (bottom - top) + 8 else y2 + 2
        draw.rectangle((x1, ty, x1 + right - left + 8, ty + bottom - top + 6), fill=colour)
        draw.text((x1 + 4, ty + 3 - top), words, font=text, fill=(255, 255, 255))
    heading, body = font(int(18 * scale), bold=True), font(int(15 * scale))
    lines = caption.lines()
    line_h = [int(26 * scale)] + [int(22 * scale)] * (len(lines) - 1)
    band = sum(line_h) + int(16 * scale)
    out = Image.new("RGB", (width, height + band), (24, 28, 34))
    out.paste(image, (0, 0))
    draw = ImageDraw.Draw(out)
    y = height + int(8 * scale)
    for i, (line, h) in enumerate(zip(lines, line_h, strict=True)):
        draw.text((int(10 * scale), y), line, font=heading if i == 0 else body,
                  fill=(255, 255, 255) if i == 0 else (220, 226, 232))
        y += h
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
