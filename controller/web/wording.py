"""What nodes and records say, in words for the pages: a node's playback note, what an
item is, the clock's source. A node writes its reports in English for its own log; the
pages never show that text (nor ids): they show these Vietnamese words instead."""

from __future__ import annotations

import re

from controller.web.views import describe_playing

PLAYED_FOR = re.compile(r"^after (\d+(?:\.\d+)?) s$")
NODE_NOTES = {
    "quiet hours": "Trong giờ yên tĩnh",
    "media not received in time": "Loa chưa nhận kịp tệp âm thanh",
    "the clip cannot be decoded": "Tệp âm thanh bị hỏng",
    "start time passed while the node was busy or down": "Đã qua giờ phát khi loa bận hoặc tắt",
}
EVENT_FALLBACK = {"failed": "Lỗi khi phát (chi tiết trong nhật ký máy chủ)",
                  "skipped": "Không phát"}


def playback_note(event: str, detail: str) -> str:
    """A node's note on a play, in Vietnamese ("after 16.3 s" → "sau 16,3 giây")."""
    detail = (detail or "").strip()
    if not detail:
        return ""
    if m := PLAYED_FOR.match(detail):
        return f"Sau {m.group(1).replace('.', ',')} giây"
    return NODE_NOTES.get(detail, EVENT_FALLBACK.get(event, ""))


def item_label(item_id: str, titles: dict[int, str]) -> str:
    """An item by what people know it as: its announcement's title, a camera reminder,
    a live broadcast; never the item id."""
    said = describe_playing(item_id, titles)
    if said == item_id:  # an item id not built here (a live item, an operator's test)
        return "Phát trực tiếp" if item_id.startswith("live") else "Mục phát khác"
    return said


RELAY_ENDS = (("the slot ended", "Hết giờ tiếp sóng"),
              ("source ended", "Đài ngừng phát hoặc mất kết nối"),
              ("the source failed", "Đài ngừng phát hoặc mất kết nối"),
              ("the station stopped", "Đài ngừng phát hoặc mất kết nối"),
              ("the controller stopped", "Máy chủ dừng"))


def relay_end_note(reason: str | None, ended: bool) -> str:
    """Why one try of a relay slot ended, in words (the stored reason names hosts)."""
    if not ended:
        return "Đang tiếp sóng"
    reason = reason or ""
    return next((said for start, said in RELAY_ENDS if reason.startswith(start)), "Đã dừng")
