"""JSON from outside, read so that bad input is a clear 400 and never a 500 further down (issue 13).

`loads` is `json.loads` that also refuses what Python's parser accepts but the rest of the product
cannot store or show: nesting deeper than MAX_DEPTH (Python raises RecursionError near 1,000 levels,
and the pages that pretty-print a payload recurse too), `NaN` / `Infinity` / `-Infinity` and numbers
too large for a float (PostgreSQL's jsonb has no such values), the NUL character (`\\u0000`, which
PostgreSQL refuses in text and jsonb) and unpaired UTF-16 surrogates (not UTF-8, so no database
stores them). Every refusal is an `UnsafeJSON` with a message fit to send back: it never quotes the
body. `SafeJSONParser` is DRF's JSON parser on top of it.
"""
from __future__ import annotations

import json
import logging
import math
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

log = logging.getLogger("ledgerline.security")

# Shopify and commercetools payloads nest about ten levels deep; 64 leaves room for custom fields.
MAX_DEPTH = 64

# In JSON text decoded from UTF-8, a NUL or a lone surrogate can only be written as an escape
# (strict parsing refuses raw control characters; UTF-8 cannot hold a surrogate): without one of
# these, no string needs looking at after parsing.
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


NOT_JSON = "is not valid JSON"
TOO_DEEP = "is nested too deeply"
UNSTORABLE = "holds text that cannot be stored"


class UnsafeJSON(ValueError):
    """Input that is not JSON, or JSON the product refuses. `problem` is one of the phrases above
    (to follow "body "), `message` the detail; neither quotes the input."""

    def __init__(self, message: str, problem: str = NOT_JSON):
        super().__init__(message)
        self.message = message
        self.problem = problem


def _refuse_constant(name: str):
    raise UnsafeJSON(f"{name} is not a JSON number: send numbers as digits (or money as a string)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON("a number is too large: send it as a string")
    return value


def nesting_exceeds(value, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects in this parsed value nest deeper than `limit`, found without recursion.
    Checked after parsing: the parser itself stops (RecursionError) near Python's recursion limit,
    and walking the containers of a parsed webhook costs a fifth of scanning its text for brackets
    outside strings (measured: 44 against 234 µs for a 5 KB Shopify order)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _check_strings(value) -> None:
    """Refuses NUL characters and unpaired surrogates in any key or string value (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise UnsafeJSON("a string contains the NUL character (\\u0000), which cannot be stored",
                                 UNSTORABLE)
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise UnsafeJSON("a string contains an unpaired UTF-16 surrogate (not valid Unicode)",
                                     UNSTORABLE) from None


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH):
    """The parsed JSON value, or UnsafeJSON saying why not."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeJSON("not UTF-8 text") from None
        raw_clean = True  # strict UTF-8: no surrogate in the text itself
    else:
        text = data
        raw_clean = text.isascii()
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnsafeJSON:
        raise
    except json.JSONDecodeError as exc:
        raise UnsafeJSON(str(exc)) from None
    except RecursionError:
        raise UnsafeJSON(f"arrays and objects may nest {max_depth} levels deep at most", TOO_DEEP) from None
    except ValueError:  # an integer of more than 4,300 digits (Python's limit)
        raise UnsafeJSON("a number has too many digits: send it as a string") from None
    if nesting_exceeds(value, max_depth):
        raise UnsafeJSON(f"arrays and objects may nest {max_depth} levels deep at most", TOO_DEEP)
    # Walking every string costs more than parsing a webhook: done only when the text has an escape
    # that may be a NUL or a surrogate (a literal backslash before "u0000" walks too, harmlessly).
    if not raw_clean or _RISKY_ESCAPE.search(text):
        _check_strings(value)
    return value


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with `loads` above: a refused body is a 400 `{"error", "message"}`."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            return loads(data)
        except UnsafeJSON as exc:
            request = (parser_context or {}).get("request")
            log.warning("API request body refused: %s path=%s", exc.message,
                        getattr(request, "path", "")[:200])
            raise ParseError({"error": f"request body {exc.problem}", "message": exc.message}) from None
