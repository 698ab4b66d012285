"""The Vietnamese normaliser: the announcement corpus, number grammar, safety properties."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcasts import normalize_vi
from broadcasts.normalize import normalize_vi_strict
from broadcasts.vi_numbers import int_to_roman, read_cardinal, roman_to_int

CORPUS = Path(__file__).with_name("corpus_vi.tsv")


def _load_corpus() -> list[tuple[str, str]]:
    pairs = []
    for line in CORPUS.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            source, expected = line.split("\t")
            pairs.append((source.replace("\\n", "\n"), expected))
    return pairs


PAIRS = _load_corpus()


def test_corpus_is_large_enough() -> None:
    assert len(PAIRS) >= 200
    assert len({source for source, _ in PAIRS}) == len(PAIRS), "duplicate inputs in the corpus"


@pytest.mark.parametrize(("source", "expected"), PAIRS, ids=[s[:40] for s, _ in PAIRS])
def test_corpus(source: str, expected: str) -> None:
    assert normalize_vi_strict(source) == expected


def test_corpus_outputs_are_fixed_points() -> None:
    """Normalising spoken words again changes nothing (no digits or acronyms are left)."""
    changed = [e for _, e in PAIRS if normalize_vi_strict(e) != e]
    assert changed == []


# ---------------------------------------------------------------- number grammar, round trip

_UNITS = {"không": 0, "một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5,
          "lăm": 5, "sáu": 6, "bảy": 7, "tám": 8, "chín": 9}  # fmt: skip


def _parse_below_thousand(words: list[str]) -> int:
    """An independent reader of 'x trăm y mươi z' / 'mười z' / 'linh z'."""
    value, i = 0, 0
    if len(words) >= 2 and words[1] == "trăm":
        value, i = _UNITS[words[0]] * 100, 2
    rest = words[i:]
    if not rest:
        return value
    if rest[0] == "linh":
        assert len(rest) == 2 and rest[1] not in ("mốt", "lăm", "tư"), words
        return value + _UNITS[rest[1]]
    if rest[0] == "mười":
        assert len(rest) <= 2 and (len(rest) == 1 or rest[1] not in ("mốt", "tư")), words
        return value + 10 + (_UNITS[rest[1]] if len(rest) == 2 else 0)
    if len(rest) >= 2 and rest[1] == "mươi":
        assert rest[0] not in ("không", "một"), words
        if len(rest) == 3:
            assert rest[2] not in ("một", "năm"), words  # must be mốt, lăm after mươi
        return value + _UNITS[rest[0]] * 10 + (_UNITS[rest[2]] if len(rest) == 3 else 0)
    assert len(rest) == 1 and value == 0, words
    return _UNITS[rest[0]]


def parse_vietnamese_number(text: str) -> int:
    total, group = 0, []
    scales = {"tỷ": 10**9, "triệu": 10**6, "nghìn": 1000}
    billions = 0
    for word in text.split():
        if word in scales:
            amount = _parse_below_thousand(group) if group else 1
            if word == "tỷ":
                billions = (billions + total + amount) * 10**9
                total = 0
            else:
                total += amount * scales[word]
            group = []
        else:
            group.append(word)
    if group:
        total += _parse_below_thousand(group)
    return billions + total


@given(st.integers(min_value=0, max_value=999_999_999_999))
@settings(max_examples=400, deadline=None)
def test_cardinal_round_trip(n: int) -> None:
    assert parse_vietnamese_number(read_cardinal(n)) == n


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "không"), (15, "mười lăm"), (21, "hai mươi mốt"), (24, "hai mươi tư"),
     (105, "một trăm linh năm"), (1005, "một nghìn không trăm linh năm"),
     (2020, "hai nghìn không trăm hai mươi"), (1_000_500, "một triệu năm trăm"),
     (67_120, "sáu mươi bảy nghìn một trăm hai mươi")],
)  # fmt: skip
def test_cardinal_examples(n: int, words: str) -> None:
    assert read_cardinal(n) == words


def test_southern_forms() -> None:
    assert read_cardinal(1005, south=True) == "một ngàn không trăm lẻ năm"


@given(st.integers(min_value=1, max_value=3999))
def test_roman_round_trip(n: int) -> None:
    assert roman_to_int(int_to_roman(n)) == n


@pytest.mark.parametrize("token", ["IIII", "VX", "IC", "MIXI", "", "ABC"])
def test_malformed_roman_is_not_a_number(token: str) -> None:
    assert roman_to_int(token) is None


# ---------------------------------------------------------------- lexicon


def test_lexicon_adds_place_names_and_local_abbreviations() -> None:
    lexicon = {
        "MX": "Mường Xén",
        "Keng Đu": "Kẻng Đu",
        "HTX DVNN": "hợp tác xã dịch vụ nông nghiệp",
    }
    text = "Bà con xã MX và bản keng đu họp tại HTX DVNN."
    assert normalize_vi(text, lexicon) == (
        "Bà con xã Mường Xén và bản Kẻng Đu họp tại hợp tác xã dịch vụ nông nghiệp."
    )


def test_lexicon_abbreviations_are_case_sensitive_and_whole_word() -> None:
    lexicon = {"MX": "Mường Xén"}
    assert normalize_vi("mx MXH MX", lexicon) == "mx em ích hát Mường Xén"


def test_lexicon_overrides_builtin_table() -> None:
    assert normalize_vi("UBND xã", {"UBND": "ủy ban"}) == "ủy ban xã"


# ---------------------------------------------------------------- robustness


def test_decomposed_unicode_is_composed_first() -> None:
    decomposed = unicodedata.normalize("NFD", "Ủy ban thông báo ngày 5/3")
    assert normalize_vi(decomposed) == "Ủy ban thông báo ngày năm tháng ba"


def test_long_text_is_fast() -> None:
    text = " ".join(source for source, _ in PAIRS) * 4  # ~60 KB
    start = time.perf_counter()
    out = normalize_vi(text)
    assert time.perf_counter() - start < 2.0
    assert not any(ch.isdigit() for ch in out)


def test_never_raises_returns_cleaned_text_on_internal_error(monkeypatch) -> None:
    import broadcasts.normalize as module

    def broken(text: str) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(module, "_PASSES", (broken,))
    assert normalize_vi("Xin  chào 🙂") == "Xin chào"


_ANNOUNCEMENT_ALPHABET = st.sampled_from(
    list("0123456789/.,:-–%°hgđ ") + ["UBND", "thứ ", "quý ", "ngày ", "II", "km", "🙂", "\n",
                                      "+84", "中", "\u0301", "\ue000", "\x00"]
)  # fmt: skip


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_strict_normaliser_never_raises_on_any_text(text: str) -> None:
    once = normalize_vi_strict(text)
    assert isinstance(once, str)
    normalize_vi_strict(once)  # its own output is valid input


@given(st.lists(_ANNOUNCEMENT_ALPHABET, max_size=60).map("".join))
@settings(max_examples=500, deadline=None)
def test_strict_normaliser_on_announcement_like_noise(text: str) -> None:
    once = normalize_vi_strict(text)
    twice = normalize_vi_strict(once)
    assert not any(ch.isdigit() for ch in once), once
    assert not any(ch.isdigit() for ch in twice)
    assert "\ue000" not in once and "\ue001" not in once


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["", "%", " km", "đ", " ha"]))
@settings(max_examples=200, deadline=None)
def test_numbers_are_idempotent(n: int, unit: str) -> None:
    once = normalize_vi_strict(f"Có {n}{unit} trong đợt này.")
    assert normalize_vi_strict(once) == once
