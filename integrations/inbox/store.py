"""The inbox: store an inbound event durably (unique on the vendor's id), then queue its task.

Hot path of every webhook. With django-q2's ORM broker the event row and its task row are written
in one transaction (both stored or neither). Both INSERT statements are compiled and the task is
signed *before* the transaction begins, so the database's write lock (on SQLite one writer at a
time, see config/sqlite_queue) is held for two statements and a commit, not for the ORM's work.
On PostgreSQL the two (with the look for a waiting event of the same order) are one statement.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from django.db import IntegrityError, InterfaceError, OperationalError, connections, models, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import sql
from django.db.models.constants import OnConflict

from ..models import Connection, InboundEvent
from ..ttl_cache import TtlCache
from .routing import flow_for

PROCESS_TASK = "integrations.tasks.process_inbound_event"
PROCESS_STORED_TASK = "integrations.tasks.process_stored_event"


@dataclass(frozen=True)
class InboxResult:
    event: InboundEvent
    created: bool


class InboundEventInvalid(ValueError):
    """An event the inbox cannot store as sent (a value longer than its column, a NUL character):
    refused before any write, instead of the database's DataError (SQLite would not even notice).
    `message` says what is wrong with the value, to follow its name ("is 250 characters long…")."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def inbound_event_check(**values: str) -> None:
    """Raises InboundEventInvalid unless each value (the text columns a vendor fills) fits its
    InboundEvent column."""
    for name, value in values.items():
        max_length = InboundEvent._meta.get_field(name).max_length
        if not isinstance(value, str):
            raise InboundEventInvalid(name, "must be text")
        if len(value) > max_length:
            raise InboundEventInvalid(name, f"is {len(value)} characters long; at most {max_length} are stored")
        if "\x00" in value:
            raise InboundEventInvalid(name, "contains a NUL character")


def inbound_event_store(
    *,
    connection: Connection,
    topic: str,
    external_id: str,
    payload,
    resource_id: str = "",
    event_id: str = "",
    triggered_at: datetime | None = None,
    headers: dict | None = None,
) -> InboxResult:
    """Insert the event, or find the one already stored under the same vendor id (a redelivery,
    also one Shopify sends again under a new webhook id with the same X-Shopify-Event-Id). A topic
    no flow handles yet is stored as ignored, with no task. Raises InboundEventInvalid, writing
    nothing, when a value does not fit its column."""
    inbound_event_check(topic=topic, external_id=external_id, event_id=event_id, resource_id=resource_id)
    routed = flow_for(connection.kind, topic) is not None
    event = InboundEvent(
        connection=connection, topic=topic, external_id=external_id, payload=payload, resource_id=resource_id,
        event_id=event_id, triggered_at=triggered_at, headers=headers or {},
        status=InboundEvent.Status.PENDING if routed else InboundEvent.Status.IGNORED,
    )
    using = router.db_for_write(InboundEvent)
    insert_event = _prepared_insert(event, using)
    rides = routed and _may_ride(connection.kind, topic, resource_id)
    # The task names the event by its unique key, so it is signed before the event has an id, and
    # before the transaction (the write lock is held for the statements only). Not for an event that
    # may ride with its order's waiting one, as most do in a sale (orders/paid right after
    # orders/create): its task is signed in the transaction only when none waits.
    insert_task = _prepared_task(connection.pk, external_id, using) if routed and not rides else None
    if routed and connections[using].vendor == "postgresql":
        task = _prepared_task(connection.pk, external_id, using) if rides else insert_task
        if task is not None:  # (the ORM broker on this database)
            return _store_in_one_statement(event, insert_event, task, rides, using)
    try:
        with transaction.atomic(using=using):  # on SQLite, queued behind other writers
            with connections[using].cursor() as cursor:
                queued = not (rides and _carrier_waiting(cursor, using, connection.pk, resource_id))
                event.pk = _execute_insert(cursor, using, *insert_event)
                if rides and queued:
                    insert_task = _prepared_task(connection.pk, external_id, using)
                if insert_task is not None and queued:
                    cursor.execute(*insert_task)
            if insert_task is None and routed and queued:
                transaction.on_commit(lambda: enqueue_event(event.pk), using=using)
    except IntegrityError:
        existing = _stored_twin(event)
        if existing is None:
            raise  # not a redelivery (e.g. the connection itself is gone): the caller answers
        return InboxResult(existing, False)
    event._state.adding, event._state.db = False, using
    return InboxResult(event, True)


def _store_in_one_statement(event: InboundEvent, insert_event: tuple, insert_task: tuple, rides: bool,
                            using: str) -> InboxResult:
    """PostgreSQL: the carrier look, the event and its task (unless a carrier waits) in one statement,
    its own transaction in autocommit: one round trip instead of BEGIN, three statements and COMMIT.
    Data-modifying WITH queries run on one snapshot, and the carrier look locks what it finds (FOR
    UPDATE), so it answers as the separate look does (see RIDING_TOPICS). A redelivery fails the
    whole statement on the unique key, writing nothing, and is answered as one."""
    from django_q.models import OrmQ

    connection = event.connection
    db = connections[using]
    event_sql, event_params = insert_event
    task_sql, task_params = insert_task
    parts, params = [], []
    if rides:
        parts.append(f"carrier AS ({_carrier_statement(using)})")
        params += _carrier_params(connection.pk, event.resource_id)
    parts.append(f"ev AS ({event_sql})")
    params += event_params
    if rides:
        parts.append(f"task AS ({_conditional_insert(OrmQ, using)})")
    else:
        parts.append(f"task AS ({task_sql})")
    params += task_params
    # (Data-modifying WITH queries run whether or not the main query reads them.)
    statement = f"WITH {', '.join(parts)} SELECT id FROM ev"
    # One statement needs no health check first (CONN_HEALTH_CHECKS' SELECT 1, a round trip per
    # webhook): a kept connection the server has dropped fails it before anything is written, and it
    # is sent once more on a new connection. (Should the commit have been lost with the answer, the
    # second one finds the event stored and answers as for a redelivery.)
    unchecked = not (db.in_atomic_block or db.connection is None or db.health_check_done)
    db.health_check_done = True
    for attempt in (1, 2):
        try:
            with (transaction.atomic(using=using) if db.in_atomic_block else contextlib.nullcontext()):
                with db.cursor() as cursor:
                    cursor.execute(statement, params)
                    event.pk = cursor.fetchone()[0]
            break
        except IntegrityError:
            existing = _stored_twin(event)
            if existing is None:
                raise
            return InboxResult(existing, False)
        except (OperationalError, InterfaceError):
            if not unchecked or attempt == 2 or db.is_usable():
                raise
            db.close()
    event._state.adding, event._state.db = False, using
    return InboxResult(event, True)


def _stored_twin(event: InboundEvent) -> InboundEvent | None:
    """The event already stored under this one's vendor id (a redelivery), or None."""
    existing = InboundEvent.objects.filter(connection=event.connection, external_id=event.external_id).first()
    if existing is None and event.event_id:
        existing = InboundEvent.objects.filter(connection=event.connection, event_id=event.event_id).first()
    return existing


_conditional_inserts: dict[tuple, str] = {}


def _conditional_insert(model, using: str) -> str:
    """INSERT of one row of `model` (the columns of _prepared_insert, in its order) made only when
    the statement's `carrier` query found nothing. The values are cast to their columns' types, as
    a SELECT's values are not typed by the columns they go to."""
    statement = _conditional_inserts.get((model, using))
    if statement is None:
        db = connections[using]
        opts = model._meta
        fields = [f for f in opts.local_concrete_fields if f is not opts.auto_field]
        columns = ", ".join(db.ops.quote_name(f.column) for f in fields)
        values = ", ".join(f"%s::{f.cast_db_type(db)}" for f in fields)
        statement = (f"INSERT INTO {db.ops.quote_name(opts.db_table)} ({columns}) SELECT {values} "
                     f"WHERE NOT EXISTS (SELECT 1 FROM carrier) RETURNING {db.ops.quote_name(opts.pk.column)}")
        _conditional_inserts[(model, using)] = statement
    return statement


# One task per order, not per webhook: Shopify sends orders/create and orders/paid (and often
# orders/updated) for one order within a second. An order event stored while an earlier one of the
# same order still waits for its task (PENDING) gets no task of its own: it rides with that one.
# Whoever applies an order event (its task, the sweep, a retry) then applies the order's later
# PENDING events, in the order they came (integrations.flows.orders.events: riders), and looks
# again until none is left, so an event that chose a rider as its carrier is applied too. Why no
# event is missed: the intake's look for a carrier and the carrier's claim are both writes on the
# same row (SQLite: one writer at a time; PostgreSQL: the look is SELECT … FOR UPDATE), so either
# the intake saw the carrier still PENDING and committed first (the carrier's look for riders,
# after its claim, then sees the new event), or it saw it claimed and queued a task of its own. A
# carrier whose worker dies before it looks leaves its riders PENDING: the sweep takes those.
RIDING_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled")
CARRIER_TOPICS = (*RIDING_TOPICS, "orders/edited")


def _may_ride(kind: str, topic: str, resource_id: str) -> bool:
    from django_q.conf import Conf

    # Synchronous tasks (tests, Q_SYNC) have no queue to save anything on.
    return kind == "shopify" and topic in RIDING_TOPICS and bool(resource_id) and not Conf.SYNC


_carrier_statements: dict[str, str] = {}


def _carrier_waiting(cursor, using: str, connection_id: int, resource_id: str) -> bool:
    """Whether an earlier event of this order waits for its task (PENDING), locking it on databases
    that lock rows, inside the transaction that stores the new event."""
    cursor.execute(_carrier_statement(using), _carrier_params(connection_id, resource_id))
    return cursor.fetchone() is not None


def _carrier_params(connection_id: int, resource_id: str) -> tuple:
    return (connection_id, resource_id, InboundEvent.Status.PENDING, *CARRIER_TOPICS)


def _carrier_statement(using: str) -> str:
    statement = _carrier_statements.get(using)
    if statement is None:
        db = connections[using]
        table = db.ops.quote_name(InboundEvent._meta.db_table)
        topics = ", ".join("%s" for _ in CARRIER_TOPICS)
        statement = (f"SELECT id FROM {table} WHERE connection_id = %s AND resource_id = %s AND status = %s "
                     f"AND topic IN ({topics}) ORDER BY id LIMIT 1"
                     + (" FOR UPDATE" if db.features.has_select_for_update else ""))
        _carrier_statements[using] = statement
    return statement


# A task's connection, by id, kept a few seconds per process as the webhook views keep theirs
# (integrations.inbox.webhooks: saving or deleting a connection clears both).
CONNECTION_CACHE_SECONDS = 5.0
_task_connections = TtlCache(ttl=CONNECTION_CACHE_SECONDS)


def task_connections_clear() -> None:
    _task_connections.clear()


def stored_event_read(connection_id: int, external_id: str) -> InboundEvent | None:
    """The event a process_stored_event task names, with its connection: the event by a statement
    compiled once per process, the connection from this process's copy."""
    from integrations.flows.orders.statements import first_row

    event = first_row("inbox:stored-event", lambda c, e: InboundEvent.objects.filter(connection_id=c, external_id=e),
                      (connection_id, external_id), router.db_for_read(InboundEvent))
    if event is None:
        return None
    connection = _task_connections.get(connection_id)
    if connection is None:
        connection = event.connection
        _task_connections.put(connection_id, connection)
    else:
        event.connection = connection
    return event


def enqueue_event(event_id: int) -> None:
    """Queue (again) the processing of a stored event: retries, replays, non-ORM brokers."""
    from django_q.tasks import async_task

    # group by nothing: any worker may take it; the task itself is idempotent.
    async_task(PROCESS_TASK, event_id, task_name=f"event-{event_id}")


# The INSERT of each model, compiled once per database: every webhook inserts the same columns, so
# only the values are prepared again (as the compiler prepares them).
_inserts: dict[tuple, tuple[str, list, list]] = {}

# Fields whose get_db_prep_save hands back a value of this exact type unchanged (and None as None):
# their values skip Django's per-field preparation, the larger part of preparing a row. Only these
# exact classes (a subclass may convert), and only for exactly that type (a TextChoices member, an
# int for a text field … still go the whole way). An integer still gets the database's own integer
# adaptation where it has one (psycopg 3: Int2/Int4/Int8, as Django sends them).
_AS_IS = {models.CharField: str, models.TextField: str, models.SlugField: str, models.EmailField: str,
          models.IntegerField: int, models.BigIntegerField: int, models.SmallIntegerField: int,
          models.PositiveIntegerField: int, models.PositiveBigIntegerField: int,
          models.PositiveSmallIntegerField: int, models.AutoField: int, models.BigAutoField: int,
          models.BooleanField: bool}


def _as_is(field, db) -> tuple[type | None, Callable | None]:
    """(the value type that passes through, the adaptation it still gets) for one column."""
    target = field.target_field if type(field) in (models.ForeignKey, models.OneToOneField) else field
    kind = _AS_IS.get(type(target))
    if kind is None or (target is not field and kind is not int):
        return None, None
    ops = type(db.ops)
    if type(target) in (models.AutoField, models.BigAutoField):  # (keys: not adapted, only validated)
        if ops.validate_autopk_value is not BaseDatabaseOperations.validate_autopk_value:
            return None, None
    elif kind is int and ops.adapt_integerfield_value is not BaseDatabaseOperations.adapt_integerfield_value:
        return int, functools.partial(db.ops.adapt_integerfield_value, internal_type=target.get_internal_type())
    return kind, None


def _prepared_insert(obj, using: str, on_conflict=None, ready: dict | None = None) -> tuple[str, tuple]:
    """INSERT … RETURNING <pk> for one unsaved row, compiled as Model.save() would compile it (with
    on_conflict=OnConflict.IGNORE, as bulk_create(ignore_conflicts=True) compiles it, returning nothing).
    `ready`: values already prepared for the database (prepared_value), by field name (not a relation)."""
    cached = _inserts.get((type(obj), using, on_conflict))
    if cached is not None:
        statement, fields, as_is = cached
        db = connections[using]
        params = []
        for field, (kind, adapt) in zip(fields, as_is):
            if ready and field.attname in ready:
                params.append(ready[field.attname])
                continue
            value = field.pre_save(obj, True)
            if type(value) is kind:
                params.append(value if adapt is None else adapt(value))
            elif value is None and kind is not None:
                params.append(None)
            elif hasattr(value, "resolve_expression"):
                break  # an expression: compiled afresh below
            else:
                params.append(field.get_db_prep_save(value, connection=db))
        else:
            return statement, tuple(params)
    opts = obj._meta
    fields = [f for f in opts.local_concrete_fields if f is not opts.auto_field]
    query = sql.InsertQuery(type(obj), on_conflict=on_conflict)
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(using=using)
    if on_conflict is None:
        compiler.returning_fields = [opts.pk]
    [(statement, params)] = compiler.as_sql()
    _inserts[(type(obj), using, on_conflict)] = (statement, fields, [_as_is(f, connections[using]) for f in fields])
    return statement, tuple(params)


def _execute_insert(cursor, using: str, statement: str, params: tuple, model=InboundEvent) -> int:
    cursor.execute(statement, params)
    db = connections[using]
    if db.features.can_return_columns_from_insert:
        return cursor.fetchone()[0]
    return db.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)


def prepared_value(model, name: str, value, using: str):
    """A column's value as an INSERT sends it (what save() would make of it). Made before a write
    transaction for a large value (a payload, a document), so that its JSON is not encoded while the
    write lock is held (on SQLite one writer at a time, config/sqlite_queue); given to insert_row."""
    return model._meta.get_field(name).get_db_prep_save(value, connection=connections[using])


def insert_row(obj, using: str, *, ready: dict | None = None) -> None:
    """obj.save(force_insert=True) through the INSERT compiled once per model (no signals: the order
    flow's rows have no receivers); obj gets its id and is marked saved. `ready`: prepared_value()s
    by field name (not a relation), each of the value obj holds for that field."""
    obj._prepare_related_fields_for_save(operation_name="save")  # a related row saved after it was assigned
    statement, params = _prepared_insert(obj, using, ready=ready)
    with connections[using].cursor() as cursor:
        obj.pk = _execute_insert(cursor, using, statement, params, type(obj))
    obj._state.adding, obj._state.db = False, using


def insert_rows(objs: list, using: str, *, ignore_conflicts: bool = False) -> None:
    """bulk_create for rows whose ids nobody reads back: one compiled INSERT, executemany (with
    ignore_conflicts, a row that breaks a unique constraint is skipped, as bulk_create skips it)."""
    if not objs:
        return
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # as bulk_create does
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    prepared = [_prepared_insert(obj, using, on_conflict) for obj in objs]
    statement = prepared[0][0]
    with connections[using].cursor() as cursor:
        cursor.executemany(_without_returning(statement), [params for _, params in prepared])


def _without_returning(statement: str) -> str:
    head, sep, _ = statement.rpartition(" RETURNING ")
    return head if sep else statement




class _CapturingBroker:
    """Keeps django-q2's signed package instead of storing it, so the row can be written in the
    event's transaction (django-q2 builds and signs the task exactly as for any async_task)."""

    def __init__(self, list_key: str):
        self.list_key = list_key
        self.package = None

    def enqueue(self, package):
        self.package = package


def _prepared_task(connection_id: int, external_id: str, using: str) -> tuple[str, tuple] | None:
    """The django-q2 task row for this event, ready to insert; None unless the broker is the ORM on
    the event's own database (other brokers, and synchronous tasks, are queued after the commit)."""
    from django.utils import timezone
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    if Conf.ORM != using or Conf.SYNC or Conf.BROKER_CLASS not in (None, "config.q_broker.CompiledORM"):
        return None
    capture = _CapturingBroker(Conf.CLUSTER_NAME)
    async_task(PROCESS_STORED_TASK, connection_id, external_id, broker=capture,
               task_name=f"event-{external_id}"[:100])
    return _prepared_insert(OrmQ(key=capture.list_key, payload=capture.package, lock=timezone.now()), Conf.ORM)
