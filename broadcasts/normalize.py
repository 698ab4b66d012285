"""Vietnamese text normalisation for speech.

Both TTS engines read digits, dates and acronyms badly ("UBND" is spelt in English,
"20/01/2020" becomes "hai mươi xẹt..."), so every text is rewritten into the words an
announcer would say before it reaches an engine. The same function feeds the TTS path, the
``loaxa text normalize`` command and the cache key, so a cached rendering always matches what
the normaliser says today.

The rules run as an ordered series of regex passes (see :data:`_PASSES`). Passes that produce
dates and times wrap their words in private-use markers so that a later range pass can still
see "DATE - DATE" as one range; markers are removed at the end. Rules and their order are
documented in docs/content.md.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache

from broadcasts.vi_data import (
    ABBREVIATIONS,
    HOTLINE_TRIGGERS,
    LETTER_NAMES,
    PHRASES,
    ROMAN_TRIGGERS,
    UNITS,
)
from broadcasts.vi_numbers import (
    read_cardinal,
    read_decimal,
    read_digits,
    read_ordinal,
    roman_to_int,
)

log = logging.getLogger(__name__)

# Markers around words that a pass produced and a later range pass must treat as one atom.
_OPEN, _CLOSE = "\ue000", "\ue001"
_ATOM = f"{_OPEN}[^{_CLOSE}]*{_CLOSE}"

# Letter boundaries: digits count as a boundary so "QL1A" still matches "QL".
_NOT_AFTER_LETTER = r"(?<![^\W\d_])"
_NOT_BEFORE_LETTER = r"(?![^\W\d_])"

_NUM = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"

Pass = Callable[[str], str]


# --------------------------------------------------------------------------- helpers


def _mark(words: str) -> str:
    return f"{_OPEN}{words}{_CLOSE}"


def _previous_word(text: str, end: int) -> str:
    """The word just before ``end`` (lower-cased), markers and spaces skipped."""
    head = text[:end].rstrip().rstrip(_CLOSE).rstrip()
    match = re.search(r"(\w+)$", head)
    return match.group(1).lower() if match else ""


def _alternation(words: Mapping[str, str] | tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _number_value(token: str) -> tuple[str, str | None]:
    """Split "67.120,5" into ("67120", "5")."""
    integer, _, fraction = token.partition(",")
    return integer.replace(".", ""), fraction or None


def _read_number_token(token: str) -> str:
    integer, fraction = _number_value(token)
    if fraction is None and len(integer) >= 3 and integer.startswith("0"):
        return read_digits(integer)  # codes such as "0123"
    return read_decimal(integer, fraction)


def _month_word(month: int) -> str:
    return "tư" if month == 4 else read_cardinal(month)


def _valid_day_month(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


# --------------------------------------------------------------------------- cleaning

_REMOVE_CHARS = re.compile("[\ufe00-\ufe0f\u200b-\u200f\u2060\ufeff\ue000-\uf8ff]")
_TRANSLATE = str.maketrans(
    {
        "–": "-", "—": "-", "−": "-", "‐": "-", "‑": "-", "…": ".", "“": "", "”": "",
        "„": "", '"': "", "«": "", "»": "", "‘": "'", "’": "'", "₫": "đ", "\t": " ",
        "•": "", "·": " ", "\u00a0": " ", "\u202f": " ",
    }
)  # fmt: skip
_KEEP_SYMBOLS = {"°"}
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
_ENDS_SENTENCE = re.compile(r"[.!?;:,]$")


def _strip_symbols(text: str) -> str:
    """Drop emoji, pictographs, control and private-use characters the engines would spell."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _KEEP_SYMBOLS or ch == "\n":
            out.append(ch)
        elif category in ("So", "Sk", "Cs", "Co", "Cn", "Cc", "Cf"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _join_lines(text: str) -> str:
    """Each line is a pause: end it with a full stop unless it has punctuation already."""
    lines = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if _BULLET.match(line) and not re.match(r"^\s*\d{1,2}[.)]\d", line):
            line = _BULLET.sub("", line)
        if not _ENDS_SENTENCE.search(line):
            line += "."
        lines.append(line)
    return " ".join(lines)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _REMOVE_CHARS.sub("", text).translate(_TRANSLATE)
    text = _strip_symbols(text.replace("\r\n", "\n").replace("\r", "\n"))
    if "\n" in text:
        text = _join_lines(text)
    return re.sub(r"[ ]{2,}", " ", text).strip()


# --------------------------------------------------------------------------- lexicon


def _is_case_sensitive_key(key: str) -> bool:
    """Abbreviation-like keys (a word with two capitals, or a digit) match case-sensitively.

    "UBND", "VNeID" and "Đề án 06" are exact; "Keng Đu" (a capitalised place name) also
    matches "keng đu".
    """
    words = key.split()
    return any(sum(ch.isupper() for ch in w) >= 2 for w in words) or any(ch.isdigit() for ch in key)


@lru_cache(maxsize=64)
def _compile_lexicon(items: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    parts = []
    for key, _ in sorted(items, key=lambda kv: len(kv[0]), reverse=True):
        escaped = re.escape(key)
        if not _is_case_sensitive_key(key):
            escaped = f"(?i:{escaped})"
        # A key that starts or ends with a digit must not cut a longer number in two.
        head = r"(?<!\d)" if key[0].isdigit() else ""
        tail = r"(?!\d)" if key[-1].isdigit() else ""
        parts.append(f"{head}{escaped}{tail}")
    pattern = re.compile(f"{_NOT_AFTER_LETTER}(?:{'|'.join(parts)}){_NOT_BEFORE_LETTER}")
    folded = {}
    for key, value in items:
        folded[key] = value
        if not _is_case_sensitive_key(key):
            folded.setdefault(key.lower(), value)
    return pattern, folded


def _apply_table(text: str, table: Mapping[str, str]) -> str:
    items = tuple((k, v) for k, v in table.items() if k.strip())
    if not items:
        return text
    pattern, folded = _compile_lexicon(items)

    def replace(m: re.Match[str]) -> str:
        found = m.group(0)
        return folded.get(found, folded.get(found.lower(), found))

    return pattern.sub(replace, text)


# --------------------------------------------------------------------------- dates


def _date_words(prefix: str | None, day: int, month: int, year: int | None) -> str:
    words = f"{prefix or 'ngày'} {read_cardinal(day)} tháng {_month_word(month)}"
    if year is not None:
        words += f" năm {read_cardinal(year)}"
    return _mark(words)


_PREFIX = r"(?:(?P<pre>[Nn]gày|[Mm]ùng|[Hh]ôm)\s+)?"

_DAY_RANGE = re.compile(
    _PREFIX + r"(?<![\w.,/])(?P<d1>\d{1,2})\s*-\s*(?P<d2>\d{1,2})/(?P<m>\d{1,2})"
    r"(?:/(?P<y>\d{4}))?(?![\w/]|[.,]\d)"
)
_DMY = re.compile(
    _PREFIX + r"(?<![\w.,/])(?P<d>\d{1,2})(?P<sep>[/.-])(?P<m>\d{1,2})(?P=sep)(?P<y>\d{4})"
    r"(?![\w/]|[.,]\d)"
)
_DM = re.compile(_PREFIX + r"(?<![\w.,/-])(?P<d>\d{1,2})/(?P<m>\d{1,2})(?![\w/]|[.,]\d)")
_MY = re.compile(
    r"(?:(?P<pre>[Tt]háng)\s+)?(?<![\w.,/])(?P<m>\d{1,2})/(?P<y>\d{4})(?![\w/]|[.,]\d)"
)


def _day_range(m: re.Match[str]) -> str:
    d1, d2, month = int(m["d1"]), int(m["d2"]), int(m["m"])
    if not (_valid_day_month(d1, month) and _valid_day_month(d2, month) and d1 < d2):
        return m.group(0)
    year = f" năm {read_cardinal(int(m['y']))}" if m["y"] else ""
    prefix = m["pre"] or "ngày"
    return _mark(
        f"{prefix} {read_cardinal(d1)}{_CLOSE}-{_OPEN}ngày {read_cardinal(d2)} "
        f"tháng {_month_word(month)}{year}"
    )


def _full_date(m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["m"])
    if not _valid_day_month(day, month):
        return m.group(0)
    return _date_words(m["pre"], day, month, int(m["y"]))


def _day_month(m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["m"])
    if not _valid_day_month(day, month):
        return m.group(0)
    return _date_words(m["pre"], day, month, None)


def _month_year(m: re.Match[str]) -> str:
    month = int(m["m"])
    if not 1 <= month <= 12:
        return m.group(0)
    prefix = m["pre"] or "tháng"
    return _mark(f"{prefix} {_month_word(month)} năm {read_cardinal(int(m['y']))}")


def _dates(text: str) -> str:
    if "/" not in text and "-" not in text and "." not in text:
        return text
    text = _DAY_RANGE.sub(_day_range, text)
    text = _DMY.sub(_full_date, text)
    text = _MY.sub(_month_year, text)
    return _DM.sub(_day_month, text)


_MONTH = re.compile(r"(?<!\w)([Tt]háng)\s+(\d{1,2})(?![\w/]|[.,]\d)")


def _months(text: str) -> str:
    def replace(m: re.Match[str]) -> str:
        month = int(m.group(2))
        return f"{m.group(1)} {_month_word(month)}" if 1 <= month <= 12 else m.group(0)

    return _MONTH.sub(replace, text)


# --------------------------------------------------------------------------- times

_TIME = re.compile(
    r"(?<![\w.,:])(?P<h>\d{1,2})(?:[hH](?P<m1>\d{2})?|g(?P<m2>\d{2})|:(?P<m3>\d{2})"
    r"(?::(?P<s>\d{2}))?)(?:'|p(?![^\W\d_])|\s?phút)?(?![^\W\d_]|\d|[.,]\d)"
)


def _time(m: re.Match[str]) -> str:
    hour = int(m["h"])
    minute_text = m["m1"] or m["m2"] or m["m3"]
    minute = int(minute_text) if minute_text else 0
    second = int(m["s"]) if m["s"] else 0
    if hour > 24 or minute > 59 or second > 59:
        return m.group(0)
    words = f"{read_cardinal(hour)} giờ"
    if minute or second:
        words += f" {read_cardinal(minute)} phút"
    if second:
        words += f" {read_cardinal(second)} giây"
    return _mark(words)


def _times(text: str) -> str:
    return _TIME.sub(_time, text)


# --------------------------------------------------------------------------- phones

_PHONE = re.compile(r"(?<![\w.,/+])(?:\+84[ .-]?|0)\d(?:[ .-]?\d){7,10}(?!\w|[.,]\d)")
_HOTLINE = re.compile(r"(?<![\w.,/])1[89]00(?:[ .]?\d){4,6}(?!\w|[.,]\d)")
_SHORT_HOTLINE = re.compile(
    rf"(?<!\w)(?P<trigger>(?i:{_alternation(HOTLINE_TRIGGERS)}))(?P<gap>:?\s+)(?P<n>11[1-9])(?!\w)"
)


def _group_digits(number: str) -> list[str]:
    """Groups for reading a phone number: as written, else 4-3-3(4)."""
    groups = [g for g in re.split(r"[ .-]", number) if g]
    if len(groups) > 1:
        return groups
    digits = groups[0]
    head, rest = digits[:4], digits[4:]
    tail = [rest[i : i + 3] for i in range(0, len(rest), 3)]
    if len(tail) > 1 and len(tail[-1]) == 1:
        tail[-2:] = [tail[-2] + tail[-1]]
    return [head, *tail]


def _read_phone(number: str) -> str:
    prefix = ""
    if number.startswith("+84"):
        prefix, number = "cộng tám bốn, ", number[3:].lstrip(" .-")
    return prefix + ", ".join(read_digits(g) for g in _group_digits(number))


def _phone(m: re.Match[str]) -> str:
    raw = m.group(0)
    digits = re.sub(r"\D", "", raw)
    expected = range(11, 13) if raw.startswith("+") else range(10, 12)
    if len(digits) not in expected:
        return raw
    return _mark(_read_phone(raw))


def _phones(text: str) -> str:
    text = _PHONE.sub(_phone, text)
    text = _HOTLINE.sub(lambda m: _mark(_read_phone(m.group(0))), text)
    return _SHORT_HOTLINE.sub(
        lambda m: f"{m['trigger']}{m['gap']}{_mark(read_digits(m['n']))}", text
    )


# --------------------------------------------------------------------------- ordinals, roman

_ROMAN = r"[IVXLC]+"
_ORDINAL = re.compile(rf"(?<!\w)([Tt]hứ)\s+(\d{{1,3}}|{_ROMAN})(?!\w)")
_TRIGGERED = re.compile(
    rf"(?<!\w)(?P<t>(?i:{_alternation(ROMAN_TRIGGERS)}))\s+"
    rf"(?:(?P<r>{_ROMAN})|(?P<n>\d{{1,2}})(?=/\d{{4}}))(?:/(?P<y>\d{{4}}))?(?![\w/])"
)


def _ordinal(m: re.Match[str]) -> str:
    token = m.group(2)
    value = int(token) if token.isdigit() else roman_to_int(token)
    if not value:
        return m.group(0)
    return f"{m.group(1)} {read_ordinal(value)}"


def _triggered(m: re.Match[str]) -> str:
    value = roman_to_int(m["r"]) if m["r"] else int(m["n"])
    if not value:
        return m.group(0)
    words = f"{m['t']} {read_cardinal(value)}"
    if m["y"]:
        words += f" năm {read_cardinal(int(m['y']))}"
    return words


def _ordinals(text: str) -> str:
    text = _TRIGGERED.sub(_triggered, text)
    return _ORDINAL.sub(_ordinal, text)


# --------------------------------------------------------------------------- ranges

_RANGE_ATOM = rf"(?:{_NUM}|{_ATOM})"
_RANGE = re.compile(
    rf"(?<![\w.,/{_CLOSE}])(?P<a>{_RANGE_ATOM})\s*-\s*(?P<b>{_RANGE_ATOM})(?![\d/]|[.,]\d)"
)
# After these words a range reads "A đến B": "từ 7-9 giờ", "cấp 8-9", "nhiệm kỳ 2021-2026".
_NO_TU_BEFORE = {"từ", "cấp", "kỳ", "kì", "học", "khóa", "khoá"}


def _range(m: re.Match[str]) -> str:
    a, b = m["a"], m["b"]
    if a[0].isdigit() and b[0].isdigit():
        # "67.120-3" or "1-2-3" style codes: only read as a range when a <= b.
        try:
            if float(_number_value(a)[0]) > float(_number_value(b)[0]):
                return m.group(0)
        except ValueError:
            return m.group(0)
    lead = "" if _previous_word(m.string, m.start()) in _NO_TU_BEFORE else "từ "
    return f"{lead}{a} đến {b}"


def _ranges(text: str) -> str:
    if "-" not in text:
        return text
    return _RANGE.sub(_range, text)


# --------------------------------------------------------------------------- units, numbers

_UNIT = re.compile(rf"(?<![\w.,])(?P<n>{_NUM})\s?(?P<u>{_alternation(UNITS)})(?!\w)")
_NEGATIVE = re.compile(r"(?<![\w.,])-(?=\d)")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_DOTTED = re.compile(r"(?<![\w.,])(\d+)\.(\d{1,2}|\d{4,})(?![\w]|[.,]\d)")
_NUMBER = re.compile(rf"(?<!\w)(?<!\d[.,])(?:{_NUM})(?!\w)")
_LEFTOVER_DIGITS = re.compile(r"\d+")


_PER_UNIT = re.compile(rf"(?<=\S)\s?/\s?(?P<u>{_alternation(UNITS)})(?!\w)")


def _units(text: str) -> str:
    text = _UNIT.sub(lambda m: f"{m['n']} {UNITS[m['u']]}", text)
    return _PER_UNIT.sub(lambda m: f" trên {UNITS[m['u']]}", text)


def _numbers(text: str) -> str:
    text = _NEGATIVE.sub("âm ", text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _DOTTED.sub(
        lambda m: f"{read_cardinal(int(m.group(1)))} chấm {read_digits(m.group(2))}", text
    )
    text = _NUMBER.sub(lambda m: _read_number_token(m.group(0)), text)
    # Whatever digits no rule claimed ("1,2,3", "5.5.5") are still read, never spelt as symbols.
    return _LEFTOVER_DIGITS.sub(lambda m: f" {_read_number_token(m.group(0))} ", text)


# --------------------------------------------------------------------------- acronyms

_TONE_MARKS = dict.fromkeys(map(ord, "\u0300\u0301\u0303\u0309\u0323"))
_SYLLABLE = re.compile(
    r"^(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnprstvx])?"
    r"[aăâeêioôơuưy]{1,3}(?:ng|nh|ch|[cmnpt])?$"
)
_WORD = re.compile(r"(?<![\w])[^\W\d_]+(?![\w])")


def _is_vietnamese_syllable(word: str) -> bool:
    base = unicodedata.normalize(
        "NFC", unicodedata.normalize("NFD", word.lower()).translate(_TONE_MARKS)
    )
    return bool(_SYLLABLE.match(base))


def _speak_capitals(m: re.Match[str]) -> str:
    """Lower-case capitalised words; spell acronyms that are not Vietnamese syllables."""
    word = m.group(0)
    if not word.isupper():
        return word
    if _is_vietnamese_syllable(word):
        return word.lower()  # "THÔNG BÁO", and lone vowels that are words: "Y tế"
    if len(word) == 1 and word in LETTER_NAMES:
        return LETTER_NAMES[word]
    if all(ch in LETTER_NAMES for ch in word):
        return " ".join(LETTER_NAMES[ch] for ch in word)
    return word.lower()


def _acronyms(text: str) -> str:
    return _WORD.sub(_speak_capitals, text)


# --------------------------------------------------------------------------- symbols, spacing

_SYMBOLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*&\s*"), " và "),
    (re.compile(r"\s*/\s*"), " trên "),
    (re.compile(r"\s*\+\s*"), " cộng "),
    (re.compile(r"\s*=\s*"), " bằng "),
    (re.compile(r"\s*@\s*"), " a còng "),
    (re.compile(r"\s+-+\s+"), ", "),
    (re.compile(r"(?<=\w)-+(?=\w)"), " "),
    (re.compile(r"[()\[\]{}]"), ", "),
    (re.compile(r"[#*_~^|<>\\`'$]"), " "),
    (re.compile(r"-"), " "),
    (re.compile(r"\.{2,}"), "."),
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")
_PUNCT_RUN = re.compile(r"[.,!?;:](?:\s*[.,!?;:])+")
_PUNCT_STRENGTH = ",:;.!?"
_PUNCT_THEN_WORD = re.compile(r"([.,!?;:])(?=[^\W\d_])")


def _symbols(text: str) -> str:
    text = text.replace(_OPEN, " ").replace(_CLOSE, " ")
    for pattern, replacement in _SYMBOLS:
        text = pattern.sub(replacement, text)
    return text


def _strongest_punctuation(m: re.Match[str]) -> str:
    """Keep the mark that ends the sentence: "Yagi, ." -> "Yagi." and "!!!" -> "!"."""
    return max((ch for ch in m.group(0) if not ch.isspace()), key=_PUNCT_STRENGTH.index)


def _spacing(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _PUNCT_RUN.sub(_strongest_punctuation, text)
    text = _PUNCT_THEN_WORD.sub(r"\1 ", text)
    body = text.strip(" ,;:.!?")
    end = text.rstrip()[-1:]
    return body + end if body and end in (".", "!", "?") else body


# --------------------------------------------------------------------------- pipeline

_BUILTIN_TABLE: dict[str, str] = {**PHRASES, **ABBREVIATIONS}

_PASSES: tuple[Pass, ...] = (
    _phones,
    _ordinals,
    _dates,
    _times,
    _months,
    _ranges,
    _units,
    _numbers,
    _acronyms,
    _symbols,
    _spacing,
)


def normalize_vi_strict(text: str, lexicon: Mapping[str, str] | None = None) -> str:
    """The normaliser without the safety net: raises on a bug so tests can see it."""
    text = _clean(text)
    if lexicon:
        text = _apply_table(text, lexicon)
    text = _apply_table(text, _BUILTIN_TABLE)
    for step in _PASSES:
        text = step(text)
    return text


def normalize_vi(text: str, lexicon: Mapping[str, str] | None = None) -> str:
    """Rewrite Vietnamese text into the words an announcer would say.

    ``lexicon`` adds a commune's own words (place names, local abbreviations) on top of the
    built-in table, whole-word; keys with a two-capital word or a digit match
    case-sensitively, other keys case-insensitively. It wins over the built-in table.

    Never raises: an announcement must still be read if a rule trips on odd input, so a
    failure is logged and the cleaned text is returned as is.
    """
    try:
        return normalize_vi_strict(text, lexicon)
    except Exception:  # noqa: BLE001 - the contract is "never raises"
        log.exception("normalize_vi failed; returning cleaned text")
        try:
            return _spacing(_clean(str(text)))
        except Exception:  # noqa: BLE001
            return str(text)
