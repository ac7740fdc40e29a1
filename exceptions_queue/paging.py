"""Keyset ("seek") pagination: the next page starts after the last row's sort key and id, so page 1
and page 10,000 cost the same and no COUNT(*) over a million rows is ever needed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from django.db.models import Q

# sort parameter -> (label, field, descending)
SORTS = {
    "-last_seen": ("Newest first", "last_seen", True),
    "last_seen": ("Oldest first", "last_seen", False),
    "-occurrences": ("Most frequent", "occurrences", True),
}
DEFAULT_SORT = "-last_seen"


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    prev_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.prev_cursor is not None

    @property
    def object_list(self) -> list:
        return self.rows


def _encode(row, field: str) -> str:
    value = getattr(row, field)
    value = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"{value}~{row.pk}"


def _decode(cursor: str, field: str, model):
    try:
        raw, pk = cursor.rsplit("~", 1)
        pk = int(pk)
        internal = model._meta.get_field(field).get_internal_type()
        if internal == "DateTimeField":
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:  # a hand-edited cursor: read it as UTC, as ours are written
                value = value.replace(tzinfo=timezone.utc)
        else:
            value = int(raw)
        return value, pk
    except (ValueError, TypeError):
        return None


def keyset_page(queryset, *, sort: str, after: str | None = None, before: str | None = None, size: int = 50) -> KeysetPage:
    _, field, desc = SORTS.get(sort, SORTS[DEFAULT_SORT])
    model = queryset.model
    backwards = False
    cursor = None
    if before and (decoded := _decode(before, field, model)):
        backwards, cursor = True, decoded
    elif after and (decoded := _decode(after, field, model)):
        cursor = decoded
    # walking backwards = the same order reversed, then the rows flipped back
    forward_desc = desc != backwards
    order = [f"-{field}", "-pk"] if forward_desc else [field, "pk"]
    if cursor is not None:
        value, pk = cursor
        op = "lt" if forward_desc else "gt"
        queryset = queryset.filter(Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"pk__{op}": pk}))
    rows = list(queryset.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        next_cursor = _encode(rows[-1], field) if rows else None
        prev_cursor = _encode(rows[0], field) if (rows and more) else None
    else:
        next_cursor = _encode(rows[-1], field) if (rows and more) else None
        prev_cursor = _encode(rows[0], field) if (rows and cursor is not None) else None
    return KeysetPage(rows=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)
