"""A real subset of commercetools' Query Predicate language, for the commercetools sandbox.

Supported: comparisons `= != <> > >= < <=` against quoted strings, numbers and booleans; `and`/`or`
/`not` (any case); parentheses; `in (…)` and `not in (…)`; `is defined`/`is not defined`; nesting
into embedded objects with `field(sub = "x")` (and dotted paths as a shorthand). A field holding a
list matches when any element matches, as in the real API (`lineItems(variant(sku = "X"))`).
Also `sort` expressions (`lastModifiedAt asc`, several applied in order).
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op><>|!=|>=|<=|=|>|<)
    | (?P<punct>[(),])
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "defined", "true", "false"}
_MISSING = object()

Predicate = Callable[[Any], bool]


class PredicateError(ValueError):
    """The `where` expression is malformed (the API answers 400 InvalidInput)."""


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise PredicateError(f"unexpected input at {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "string":
            tokens.append(("value", re.sub(r"\\(.)", r"\1", value[1:-1])))
        elif kind == "number":
            tokens.append(("value", Decimal(value)))
        elif kind == "name" and value.lower() in _KEYWORDS:
            word = value.lower()
            if word in ("true", "false"):
                tokens.append(("value", word == "true"))
            else:
                tokens.append(("kw", word))
        else:
            tokens.append((kind, value))
    tokens.append(("end", None))
    return tokens


def _as_datetime(value: str) -> datetime | None:
    if len(value) < 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Bring a stored value and a literal to one type, or None when they cannot be compared."""
    if isinstance(right, bool) or isinstance(left, bool):
        return (left, right) if isinstance(left, bool) and isinstance(right, bool) else None
    if isinstance(right, Decimal):
        if isinstance(left, (int, float)):
            return Decimal(str(left)), right
        if isinstance(left, str):
            try:
                return Decimal(left), right
            except InvalidOperation:
                return None
        return None
    if isinstance(right, str):
        if not isinstance(left, str):
            return (str(left), right) if isinstance(left, (int, float)) else None
        left_dt, right_dt = _as_datetime(left), _as_datetime(right)
        if left_dt and right_dt and (left_dt.tzinfo is None) == (right_dt.tzinfo is None):
            return left_dt, right_dt
        return left, right
    return None


_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _values(value: Any) -> list[Any]:
    """A field value as the list of candidates a comparison may match (lists match on any element)."""
    if value is _MISSING or value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _get(obj: Any, path: str) -> Any:
    """Follow a dotted path; a list along the way fans out (any element)."""
    current = [obj]
    for part in path.split("."):
        nxt = []
        for item in current:
            for candidate in _values(item):
                if isinstance(candidate, dict) and part in candidate and candidate[part] is not None:
                    nxt.append(candidate[part])
        current = nxt
    if not current:
        return _MISSING
    return current[0] if len(current) == 1 else [v for c in current for v in _values(c)]


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos]

    def take(self, kind: str, value: Any = None) -> Any:
        tok_kind, tok_value = self.tokens[self.pos]
        if tok_kind != kind or (value is not None and tok_value != value):
            raise PredicateError(f"expected {value or kind}, found {tok_value!r}")
        self.pos += 1
        return tok_value

    def accept(self, kind: str, value: Any = None) -> bool:
        tok_kind, tok_value = self.tokens[self.pos]
        if tok_kind == kind and (value is None or tok_value == value):
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        self.take("end")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.accept("kw", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda obj: any(p(obj) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.accept("kw", "and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda obj: all(p(obj) for p in parts))

    def unary(self) -> Predicate:
        if self.accept("kw", "not"):
            inner = self.unary()
            return lambda obj: not inner(obj)
        if self.accept("punct", "("):
            inner = self.or_expr()
            self.take("punct", ")")
            return inner
        return self.field_predicate()

    def literal_list(self) -> list[Any]:
        self.take("punct", "(")
        values = [self.take("value")]
        while self.accept("punct", ","):
            values.append(self.take("value"))
        self.take("punct", ")")
        return values

    def field_predicate(self) -> Predicate:
        path = self.take("name")
        kind, value = self.peek()
        if kind == "punct" and value == "(":
            self.pos += 1
            inner = self.or_expr()
            self.take("punct", ")")
            return lambda obj: any(inner(v) for v in _values(_get(obj, path)) if isinstance(v, dict))
        if kind == "op":
            self.pos += 1
            literal = self.take("value")
            compare = _COMPARE[value]

            def comparison(obj):
                for candidate in _values(_get(obj, path)):
                    pair = _comparable(candidate, literal)
                    if pair is not None and compare(*pair):
                        return True
                return False

            return comparison
        negate = self.accept("kw", "not")
        if self.accept("kw", "in"):
            literals = self.literal_list()

            def membership(obj):
                hit = any(
                    (pair := _comparable(candidate, literal)) is not None and pair[0] == pair[1]
                    for candidate in _values(_get(obj, path))
                    for literal in literals
                )
                return hit != negate

            return membership
        if negate:
            raise PredicateError(f"expected 'in' after 'not' for {path}")
        if self.accept("kw", "is"):
            negate = self.accept("kw", "not")
            self.take("kw", "defined")
            return lambda obj: (_get(obj, path) not in (_MISSING, None)) != negate
        raise PredicateError(f"expected an operator after {path!r}, found {value!r}")


def parse_predicate(text: str) -> Predicate:
    """Compile one `where` expression into a function of a resource dict."""
    if not text or not text.strip():
        raise PredicateError("empty predicate")
    return _Parser(text).parse()


def parse_predicates(expressions: list[str]) -> Predicate:
    """Several `where` parameters are combined with a logical AND, as the API does."""
    predicates = [parse_predicate(text) for text in expressions]
    return lambda obj: all(p(obj) for p in predicates)


def sort_resources(resources: list[dict], sort_expressions: list[str]) -> list[dict]:
    """Apply `sort=field asc|desc` expressions (the first is the primary key); missing values last."""
    keys = []
    for expression in sort_expressions:
        parts = expression.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise PredicateError(f"malformed sort expression {expression!r}")
        keys.append((parts[0], len(parts) == 2 and parts[1].lower() == "desc"))
    result = list(resources)
    for path, descending in reversed(keys):
        present = [r for r in result if _get(r, path) not in (_MISSING, None)]
        missing = [r for r in result if _get(r, path) in (_MISSING, None)]
        present.sort(key=lambda r: _sort_key(_get(r, path)), reverse=descending)
        result = present + missing
    return result


def _sort_key(value: Any) -> Any:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float, Decimal)):
        return (1, Decimal(str(value)))
    if isinstance(value, str):
        parsed = _as_datetime(value)
        return (2, parsed.timestamp()) if parsed and parsed.tzinfo else (3, value)
    return (4, str(value))
