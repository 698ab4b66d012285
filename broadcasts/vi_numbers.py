"""Reading numbers aloud in Vietnamese.

Kept apart from the text rules in :mod:`broadcasts.normalize` because the number grammar is
self-contained and easy to get subtly wrong ("mốt", "tư", "lăm", "linh", "không trăm"); a
small module with no regexes is easier to test exhaustively (see the round-trip test that
parses the words back into the integer).
"""

from __future__ import annotations

DIGITS: tuple[str, ...] = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")

#: Numbers longer than this are read digit by digit: nobody says a 16-digit number as a quantity.
MAX_CARDINAL_DIGITS = 15

_BILLION = 10**9


def _units_after_tens(units: int) -> str:
    """The units word after "mươi" (20..99): 1 is "mốt", 4 is "tư", 5 is "lăm"."""
    return {1: "mốt", 4: "tư", 5: "lăm"}.get(units, DIGITS[units])


def read_triple(n: int, *, full: bool, zero_link: str = "linh") -> list[str]:
    """Words for 0 < n < 1000 as one three-digit group.

    ``full`` is true for a group that follows a larger one (the "005" of 1.005): Vietnamese
    then says the hundreds even when zero ("một nghìn không trăm linh năm").
    """
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if hundreds or full:
                words.append(zero_link)
            words.append(DIGITS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else DIGITS[units])
    else:
        words += [DIGITS[tens], "mươi"]
        if units:
            words.append(_units_after_tens(units))
    return words


def _below_billion(n: int, *, full: bool, zero_link: str, thousand: str) -> list[str]:
    """Words for 0 < n < 10^9, skipping all-zero groups ("một triệu năm trăm")."""
    words: list[str] = []
    started = full
    for value, scale in ((n // 10**6, "triệu"), (n // 1000 % 1000, thousand), (n % 1000, "")):
        if value == 0:
            continue
        words += read_triple(value, full=started, zero_link=zero_link)
        if scale:
            words.append(scale)
        started = True
    return words


def _cardinal_words(n: int, zero_link: str, thousand: str) -> list[str]:
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        words = _cardinal_words(high, zero_link, thousand) + ["tỷ"]
        if low:
            words += _below_billion(low, full=True, zero_link=zero_link, thousand=thousand)
        return words
    return _below_billion(n, full=False, zero_link=zero_link, thousand=thousand)


def read_cardinal(n: int, *, south: bool = False) -> str:
    """Read a non-negative integer: 67120 -> "sáu mươi bảy nghìn một trăm hai mươi".

    ``south`` switches to the southern forms ("lẻ", "ngàn"). Huge numbers fall back to
    digit-by-digit reading rather than inventing scale words.
    """
    if n < 0:
        return "âm " + read_cardinal(-n, south=south)
    if n == 0:
        return DIGITS[0]
    if len(str(n)) > MAX_CARDINAL_DIGITS:
        return read_digits(str(n))
    zero_link, thousand = ("lẻ", "ngàn") if south else ("linh", "nghìn")
    return " ".join(_cardinal_words(n, zero_link, thousand))


def read_ordinal(n: int) -> str:
    """Ordinal after "thứ": 1 is "nhất", 4 is "tư"; the rest read as cardinals."""
    if n == 1:
        return "nhất"
    if n == 4:
        return "tư"
    return read_cardinal(n)


def read_digits(digits: str) -> str:
    """Digit by digit, for phone numbers and codes: "113" -> "một một ba"."""
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def read_fraction_digits(digits: str) -> str:
    """The part after the decimal comma: leading zeros one by one, then a short number.

    Vietnamese says 3,14 as "ba phẩy mười bốn" and 0,05 as "không phẩy không năm"; long
    tails are read digit by digit.
    """
    stripped = digits.lstrip("0")
    zeros = len(digits) - len(stripped)
    words = [DIGITS[0]] * zeros
    if stripped:
        words.append(read_cardinal(int(stripped)) if len(stripped) <= 3 else read_digits(stripped))
    return " ".join(words)


def read_decimal(integer_part: str, fraction_part: str | None) -> str:
    """Read "99" + "6" as "chín mươi chín phẩy sáu"."""
    head = read_cardinal(int(integer_part)) if integer_part else DIGITS[0]
    if not fraction_part:
        return head
    return f"{head} phẩy {read_fraction_digits(fraction_part)}"


_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_to_int(token: str) -> int | None:
    """Value of a well-formed roman numeral, or None (so "MIX" as a word is not a number).

    Well-formedness is checked by converting back, which rejects "IIII" or "VX".
    """
    if not token or any(ch not in _ROMAN_VALUES for ch in token):
        return None
    total = 0
    for i, ch in enumerate(token):
        value = _ROMAN_VALUES[ch]
        if i + 1 < len(token) and _ROMAN_VALUES[token[i + 1]] > value:
            total -= value
        else:
            total += value
    return total if 0 < total < 4000 and int_to_roman(total) == token else None


def int_to_roman(n: int) -> str:
    """Canonical roman numeral for 0 < n < 4000."""
    table = (
        (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
        (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
    )  # fmt: skip
    out = []
    for value, symbol in table:
        count, n = divmod(n, value)
        out.append(symbol * count)
    return "".join(out)
