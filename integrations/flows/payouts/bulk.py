"""Writing many rows at once for the payouts flow: a month of settlement is 100,000 balance
transactions and as many reconciliation lines, too many for one INSERT per batch of model instances.

On PostgreSQL the rows go in with one COPY (psycopg formats them in C; no model instances, no SQL
text to quote); on any other database (SQLite: the demo, tests) with bulk_create in batches. The
rows are plain tuples in the order of the fields named; a concrete field not named gets its default.
After a large import the table is analysed (`analyze_if_large`), so the matching that follows at
once is planned on what the table now holds (autovacuum would only get to it later).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from django.db import connections, models

BATCH_SIZE = 2000
ANALYZE_AFTER_ROWS = 10_000


def rows_insert(model: type[models.Model], fields: Sequence[str], rows: Iterable[tuple], *,
                batch_size: int = BATCH_SIZE) -> int:
    """Insert the rows (each a tuple of values for `fields`) in one statement per database: COPY on
    PostgreSQL, bulk_create in batches elsewhere. Returns how many rows went in. Nothing is read back
    (no primary keys): callers that need the ids query them afterwards."""
    connection = connections[model.objects.db]
    if connection.vendor != "postgresql":
        created = model.objects.bulk_create((model(**dict(zip(fields, row))) for row in rows), batch_size=batch_size)
        return len(created)
    opts = model._meta
    named = [opts.get_field(name) for name in fields]
    rest = [f for f in opts.concrete_fields if f not in named and not f.primary_key]
    # Defaults are the same for every row: prepared once.
    defaults = tuple(_prepared(f, f.get_default(), connection) for f in rest)
    json_at = [i for i, f in enumerate(named) if isinstance(f, models.JSONField)]
    encoders = {i: named[i].encoder for i in json_at}
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in [*named, *rest])
    count = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {qn(opts.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = json.dumps(row[i], cls=encoders[i])
                copy.write_row((*row, *defaults) if defaults else row)
                count += 1
    return count


def analyze_if_large(model: type[models.Model], inserted: int) -> None:
    """After many rows went in at once, have PostgreSQL look at the table again, so what runs next (the
    matching of what was imported) is planned on what it holds now, not on what autovacuum last saw."""
    connection = connections[model.objects.db]
    if connection.vendor == "postgresql" and inserted >= ANALYZE_AFTER_ROWS:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _prepared(field, value, connection):
    if isinstance(field, models.JSONField):
        return json.dumps(value, cls=field.encoder)
    return field.get_db_prep_save(value, connection)
