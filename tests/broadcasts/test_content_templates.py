"""Announcement templates: fields listed, rendered text, clear errors."""

from __future__ import annotations

import pytest

from broadcasts import normalize_vi
from broadcasts.templates import TemplateError, list_templates, render_template


def test_the_five_templates_exist_with_fields() -> None:
    ids = {t.id for t in list_templates()}
    assert ids == {"vaccination_day", "power_cut", "meeting", "vneid_support", "storm_warning"}
    for template in list_templates():
        assert template.fields and all(f.label and f.example for f in template.fields)


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.id)
def test_examples_render_and_normalise_to_plain_words(template) -> None:
    text = render_template(template.id, {f.name: f.example for f in template.fields})
    assert "{" not in text and "}" not in text
    for field in template.fields:
        assert field.example in text
    spoken = normalize_vi(text)
    assert not any(ch.isdigit() for ch in spoken)


def test_power_cut_text() -> None:
    text = render_template(
        "power_cut",
        {"utility": "Điện lực Kỳ Sơn", "start": "7h00", "end": "17h00", "date": "20/5/2025",
         "area": "thôn 1", "reason": "thay cột điện"},
    )  # fmt: skip
    assert text.startswith(
        "Điện lực Kỳ Sơn thông báo tạm ngừng cung cấp điện từ 7h00 đến 17h00 ngày 20/5/2025"
    )
    assert "từ bảy giờ đến mười bảy giờ ngày hai mươi tháng năm" in normalize_vi(text)


def test_missing_and_unknown_fields_are_named() -> None:
    with pytest.raises(
        TemplateError, match=r"missing field\(s\): date, place.*unknown field\(s\): plase"
    ):
        render_template(
            "meeting",
            {"attendees": "a", "meeting": "b", "time": "19h", "agenda": "c", "plase": "x"},
        )


def test_blank_field_counts_as_missing() -> None:
    values = {"commune": "xã A", "days": "  ", "start": "7h", "end": "9h", "place": "UBND"}
    with pytest.raises(TemplateError, match="missing field\\(s\\): days"):
        render_template("vneid_support", values)


def test_unknown_template() -> None:
    with pytest.raises(TemplateError, match="unknown template 'flood'"):
        render_template("flood", {})
