"""Vietnamese announcement templates with named fields.

Staff fill a form instead of writing the same power-cut notice every month; the text then goes
through the normal pipeline (numbers, dates and abbreviations in field values are normalised
like any other text).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass


class TemplateError(ValueError):
    """Unknown template, or missing/unknown fields (listed in the message)."""


@dataclass(frozen=True)
class TemplateField:
    name: str
    label: str
    example: str


@dataclass(frozen=True)
class Template:
    id: str
    title: str
    body: str
    fields: tuple[TemplateField, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _field(name: str, label: str, example: str) -> TemplateField:
    return TemplateField(name, label, example)


TEMPLATES: dict[str, Template] = {
    t.id: t
    for t in (
        Template(
            "vaccination_day",
            "Ngày tiêm chủng",
            "{commune} thông báo: vào lúc {time} ngày {date}, {place} tổ chức tiêm {vaccine} "
            "cho {target}. Đề nghị các gia đình đưa trẻ đi tiêm đúng lịch, mang theo sổ tiêm "
            "chủng và thẻ BHYT.",
            (
                _field("commune", "Đơn vị thông báo", "UBND xã Mường Xén"),
                _field("time", "Giờ bắt đầu", "7h30"),
                _field("date", "Ngày", "15/3/2025"),
                _field("place", "Địa điểm", "Trạm Y tế xã"),
                _field("vaccine", "Loại vắc xin", "vắc xin sởi - rubella"),
                _field("target", "Đối tượng", "trẻ từ 1-5 tuổi"),
            ),
        ),
        Template(
            "power_cut",
            "Lịch cắt điện",
            "{utility} thông báo tạm ngừng cung cấp điện từ {start} đến {end} ngày {date} "
            "tại {area} để {reason}. Mong bà con thông cảm và chủ động sắp xếp công việc.",
            (
                _field("utility", "Đơn vị điện lực", "Điện lực Kỳ Sơn"),
                _field("start", "Từ giờ", "7h00"),
                _field("end", "Đến giờ", "17h00"),
                _field("date", "Ngày", "20/5/2025"),
                _field("area", "Khu vực", "thôn 1, thôn 2 và thôn 5"),
                _field("reason", "Lý do", "bảo dưỡng đường dây 35 kV"),
            ),
        ),
        Template(
            "meeting",
            "Thông báo họp",
            "Kính mời {attendees} đến dự {meeting} vào lúc {time} ngày {date} tại {place}. "
            "Nội dung: {agenda}. Đề nghị các đại biểu đến dự đầy đủ, đúng giờ.",
            (
                _field("attendees", "Thành phần", "đại diện các hộ gia đình thôn 3"),
                _field("meeting", "Cuộc họp", "cuộc họp thôn"),
                _field("time", "Giờ", "19h30"),
                _field("date", "Ngày", "12/4/2025"),
                _field("place", "Địa điểm", "Nhà văn hóa thôn 3"),
                _field("agenda", "Nội dung", "bình xét hộ nghèo năm 2025"),
            ),
        ),
        Template(
            "vneid_support",
            "Hỗ trợ VNeID",
            "Công an {commune} tổ chức hỗ trợ người dân kích hoạt tài khoản định danh điện tử "
            "VNeID mức độ 2 vào {days}, từ {start} đến {end}, tại {place}. Khi đến, bà con "
            "mang theo CCCD gắn chip và điện thoại thông minh có số điện thoại chính chủ.",
            (
                _field("commune", "Xã", "xã Mường Xén"),
                _field("days", "Ngày hỗ trợ", "thứ 7 và chủ nhật"),
                _field("start", "Từ giờ", "7h30"),
                _field("end", "Đến giờ", "11h30"),
                _field("place", "Địa điểm", "hội trường UBND xã"),
            ),
        ),
        Template(
            "storm_warning",
            "Cảnh báo bão",
            "Tin khẩn cấp: {storm} đang di chuyển theo hướng {direction}, sức gió mạnh cấp "
            "{wind}, giật cấp {gust}. Dự báo {impact}. Ban chỉ huy PCTT&TKCN xã đề nghị bà "
            "con {action}. Khi cần hỗ trợ, gọi {hotline}.",
            (
                _field("storm", "Tên cơn bão", "cơn bão số 3"),
                _field("direction", "Hướng di chuyển", "Tây Bắc"),
                _field("wind", "Cấp gió", "10-11"),
                _field("gust", "Giật cấp", "13"),
                _field("impact", "Ảnh hưởng", "từ đêm nay có mưa to 200-300mm"),
                _field("action", "Khuyến cáo", "gia cố nhà cửa, không ra khơi"),
                _field("hotline", "Số điện thoại", "0238 3844 123"),
            ),
        ),
    )
}


def list_templates() -> list[Template]:
    return list(TEMPLATES.values())


def get_template(template_id: str) -> Template:
    try:
        return TEMPLATES[template_id]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise TemplateError(f"unknown template {template_id!r}; known: {known}") from None


def render_template(template_id: str, values: Mapping[str, str]) -> str:
    """Fill a template; every field is required and unknown fields are refused (typos)."""
    template = get_template(template_id)
    missing = [n for n in template.field_names if not str(values.get(n, "")).strip()]
    unknown = sorted(set(values) - set(template.field_names))
    problems = []
    if missing:
        problems.append(f"missing field(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)}")
    if problems:
        raise TemplateError(f"template {template_id!r}: {'; '.join(problems)}")
    clean = {n: " ".join(str(values[n]).split()) for n in template.field_names}
    return string.Formatter().vformat(template.body, (), clean)
