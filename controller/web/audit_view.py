"""The audit log as people read it: who (full name), did what (Vietnamese), to what (a
title or a name, never a database id or a hash). No HTTP here, so it is easy to test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Announcement, ApiToken, AuditEvent, CameraAlertRecord, Node
from controller.services.alerts import KIND_LABELS
from controller.services.calendar import zone_label
from controller.services.users import full_names
from mqtt_contract import CommandKind

ACTION_LABELS = {
    "create": "Tạo bản tin", "edit": "Sửa bản tin", "cancel": "Huỷ bản tin",
    "submit": "Gửi duyệt", "approve": "Duyệt", "reject": "Trả lại để sửa",
    "back_to_draft": "Đưa về nháp", "back_for_approval": "Sửa nội dung, chờ duyệt lại",
    "delete": "Xoá bản tin", "schedule": "Lên lịch phát",
    "cancel_schedule": "Huỷ lịch phát", "emergency": "Phát khẩn cấp",
    "stop_emergency": "Dừng phát khẩn cấp",
    "create_user": "Tạo tài khoản", "update_user": "Sửa tài khoản",
    "lock_user": "Khoá tài khoản", "unlock_user": "Mở khoá tài khoản",
    "reset_password": "Đặt lại mật khẩu", "change_password": "Đổi mật khẩu",
    "sign_out": "Đăng xuất", "create_api_token": "Tạo mã API",
    "revoke_api_token": "Thu hồi mã API",
    "edit_zone": "Sửa thôn/khu", "edit_group": "Sửa nhóm cụm loa",
    "put_commune": "Khai báo xã", "upstream_bulletin": "Nhận bản tin từ hệ thống nguồn",
    "add_holiday": "Thêm ngày nghỉ", "delete_holiday": "Xoá ngày nghỉ",
    "upload": "Tải lên bản ghi âm", "lexicon": "Sửa cách đọc từ",
    "delete_lexicon": "Xoá cách đọc từ",
    "alert_acknowledge": "Tiếp nhận cảnh báo", "alert_resolve": "Xử lý xong cảnh báo",
    "alert_false_alarm": "Báo động giả",
    "live_start": "Bắt đầu phát trực tiếp", "live_stop": "Kết thúc phát trực tiếp",
    "remove": "Gỡ bỏ",
}
ENTITY_ACTION_LABELS = {
    ("create", "stream_source"): "Thêm đài tiếp sóng",
    ("remove", "stream_source"): "Gỡ đài tiếp sóng",
    ("create", "relay_slot"): "Lên lịch tiếp sóng",
    ("approve", "relay_slot"): "Duyệt lịch tiếp sóng",
    ("cancel", "relay_slot"): "Huỷ lịch tiếp sóng",
}
"""An action whose words depend on what it was done to (a relay's "create" is no
announcement)."""
COMMAND_LABELS = {
    CommandKind.play: "phát ngay", CommandKind.stop: "dừng phát",
    CommandKind.volume: "chỉnh âm lượng", CommandKind.test_tone: "phát tiếng thử loa",
    CommandKind.reboot: "khởi động lại", CommandKind.resync: "đồng bộ lại",
    CommandKind.restart: "khởi động lại phần mềm", CommandKind.config: "đổi cấu hình",
    CommandKind.versions: "xem phiên bản",
    CommandKind.live_start: "bắt đầu phát trực tiếp",
    CommandKind.live_stop: "kết thúc phát trực tiếp",
}


def action_label(action: str, entity: str | None = None) -> str:
    """Every action the services record, in Vietnamese (commands and remote operations
    by their kind; some by what they were done to)."""
    if (action, entity) in ENTITY_ACTION_LABELS:
        return ENTITY_ACTION_LABELS[(action, entity)]
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    for prefix, head in (("command_", "Lệnh tới cụm loa"), ("operation_", "Thao tác từ xa")):
        if action.startswith(prefix):
            kind = action.removeprefix(prefix)
            words = COMMAND_LABELS.get(kind)  # type: ignore[call-overload]  (a StrEnum key)
            return f"{head}: {words}" if words else head
    return "Thao tác khác"


@dataclass
class AuditLine:
    at: datetime
    who: str
    action: str
    what: str
    steps: list[str]


@dataclass
class Names:
    """Everything one page of the log names, looked up once per page."""

    people: dict[str, str]
    titles: dict[str, str]
    nodes: dict[str, str]
    alerts: dict[str, str]
    tokens: dict[str, str]

    @classmethod
    def load(cls, session: Session, events: list[AuditEvent]) -> Names:
        def ids(entity: str) -> set[str]:
            return {e.entity_id for e in events if e.entity == entity}

        numbers = [int(i) for i in ids("announcement") if i.isdigit()]
        titles = {str(i): t or text[:60] for i, t, text in session.execute(
            select(Announcement.id, Announcement.title, Announcement.text)
            .where(Announcement.id.in_(numbers)))}
        nodes = {n.node_id: n.name or zone_label(n.node_id) for n in session.scalars(select(Node))}
        alerts = {r.alert_id: f"{KIND_LABELS.get(r.kind, 'Cảnh báo')} tại "
                              f"{nodes.get(r.node_id, 'cụm loa')}"
                  for r in session.scalars(select(CameraAlertRecord)
                                           .where(CameraAlertRecord.alert_id.in_(ids("alert"))))}
        tokens = {str(t.id): t.name for t in session.scalars(
            select(ApiToken).where(ApiToken.id.in_(
                [int(i) for i in ids("api_token") if i.isdigit()])))}
        people = full_names(session)
        return cls(people, titles, nodes, alerts, tokens)

    def person(self, username: str) -> str:
        return self.people.get(username, username)


def describe_entity(event: AuditEvent, names: Names) -> str:
    """What the record was about, by name."""
    entity, key, detail = event.entity, event.entity_id, event.detail or {}
    if entity == "announcement":
        title = names.titles.get(key) or detail.get("title")
        return f"«{title}»" if title else "một bản tin đã xoá"
    if entity == "user":
        return names.person(key)
    if entity == "node":
        return names.nodes.get(key, "cụm loa")
    if entity == "alert":
        return names.alerts.get(key, "cảnh báo camera")
    if entity == "api_token":
        return f"mã API «{names.tokens.get(key) or detail.get('name') or 'đã xoá'}»"
    if entity == "zone":
        return zone_label(key.rpartition("/")[2])
    if entity == "group":
        return f"nhóm {key}"
    if entity == "calendar":
        day = detail.get("day")
        return f"ngày {datetime.fromisoformat(day):%d/%m/%Y}" if isinstance(day, str) else \
            "ngày nghỉ"
    if entity == "lexicon":
        return f"từ «{key}»"
    if entity == "upload":
        return f"tệp «{detail.get('name') or 'ghi âm'}»"
    if entity == "command":
        return "mọi cụm loa được chọn"
    if entity == "operation":
        return "các cụm loa được chọn"
    return ""


def lines(session: Session, events: list[AuditEvent]) -> list[AuditLine]:
    names = Names.load(session, events)
    return [AuditLine(e.at, names.person(e.actor), action_label(e.action, e.entity),
                      describe_entity(e, names),
                      [action_label(s.get("action", ""))
                       for s in (e.detail or {}).get("steps", [])])
            for e in events]
