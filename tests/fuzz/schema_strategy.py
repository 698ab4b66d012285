"""Hypothesis strategies from the JSON schemas pydantic gives the contract's models.

A small generator for the subset of JSON Schema that ``Model.model_json_schema()`` emits
($ref/$defs, anyOf, enum, const, the scalar types with their bounds and patterns,
date-time and time formats, arrays, objects). hypothesis-jsonschema would do this, but
its 0.23 release relies on Hypothesis internals that Hypothesis 6.170 no longer has.
Values are kept small (short lists, bounded numbers near the limits) so a few hundred
examples reach deep into the handlers quickly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

MAX_ITEMS = 4
_BIG = (0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1)
"""Integers at the edges of what SQLite, JSON readers and JavaScript can hold."""

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12)


def from_model_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit ``schema`` (a model's JSON schema, with its ``$defs``)."""
    return _node(schema, schema.get("$defs", {}))


def _node(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: _node(defs[name], defs))
    if "anyOf" in s:
        return st.one_of([_node(option, defs) for option in s["anyOf"]])
    if "const" in s:
        return st.just(s["const"])
    if "enum" in s:
        return st.sampled_from(s["enum"])
    kind = s.get("type")
    maker = _TYPES.get(kind) if isinstance(kind, str) else None
    return maker(s, defs) if maker else ANY_JSON


def _string(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = s.get("format")
    if fmt == "date-time":
        return st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1),
                            timezones=st.just(UTC)).map(datetime.isoformat)
    if fmt == "time":
        return st.times().map(lambda t: t.strftime("%H:%M"))
    if "pattern" in s:
        return st.from_regex(s["pattern"], fullmatch=True)
    return st.text(min_size=s.get("minLength", 0), max_size=min(s.get("maxLength", 30), 30))


def _bounds(s: dict[str, Any]) -> tuple[Any, Any]:
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum", s.get("exclusiveMaximum"))
    return low, high


def _integer(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[int]:
    low, high = _bounds(s)
    if "exclusiveMinimum" in s:
        low += 1
    if "exclusiveMaximum" in s:
        high -= 1
    edges = [v for v in (low, high, *_BIG) if v is not None and (low is None or v >= low)
             and (high is None or v <= high)]
    return st.integers(low, high) | st.sampled_from(edges)


def _number(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[float]:
    low, high = _bounds(s)
    if low is None and high is None:  # JSON has no NaN, but json.dumps and pydantic do
        return st.floats(allow_nan=True, allow_infinity=True)
    return st.floats(low, high, allow_nan=False, allow_infinity=False,
                     exclude_min="exclusiveMinimum" in s, exclude_max="exclusiveMaximum" in s)


def _array(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    items = _node(s.get("items", {}), defs)
    low = s.get("minItems", 0)
    return st.lists(items, min_size=low, max_size=max(low, min(s.get("maxItems", MAX_ITEMS),
                                                                MAX_ITEMS)))


def _object(s: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = s.get("properties", {})
    if not props:
        return st.dictionaries(st.text(max_size=12), ANY_JSON, max_size=4)
    required = set(s.get("required", ()))
    return st.fixed_dictionaries(
        {k: _node(v, defs) for k, v in props.items() if k in required},
        optional={k: _node(v, defs) for k, v in props.items() if k not in required})


_TYPES = {"string": _string, "integer": _integer, "number": _number, "array": _array,
          "object": _object, "boolean": lambda s, d: st.booleans(),
          "null": lambda s, d: st.none()}
