"""The inbox's and the order flow's compiled INSERTs store exactly what Model.save() would store:
the values that skip Django's per-field preparation are the ones it would hand back unchanged."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import router
from django.db.models import sql
from django.utils import timezone

from integrations.inbox.store import _prepared_insert, insert_row, prepared_value
from integrations.models import InboundEvent, OrderEvent, OrderLink, OutboundWrite

pytestmark = pytest.mark.django_db


def _comparable(params) -> list:
    """Each value with its exact type (psycopg 3's Int4 is not an int to the database's binding);
    a JSON wrapper (psycopg's Jsonb compares by identity) by the value it wraps."""
    return [(type(p), p.obj if hasattr(p, "obj") else p) for p in params]


def _as_save_would(obj, using):
    opts = obj._meta
    fields = [f for f in opts.local_concrete_fields if f is not opts.auto_field]
    query = sql.InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    return _comparable(query.get_compiler(using=using).as_sql()[0][1])


def _rows(connection):
    link = OrderLink(connection=connection, storefront_order_id="5001", order_number="#5001",
                     state=OrderLink.State.RECEIVED, payload={"id": 5001, "total_price": "12.30", "note": None})
    insert_row(link, router.db_for_write(OrderLink))
    return [
        link,
        OrderEvent(order_id=link.pk, at=timezone.now(), kind=OrderEvent.Kind.UPDATED, message="orders/paid: paid"),
        OrderEvent(order_id=link.pk, at=timezone.now() - timedelta(seconds=3), kind="posted", message="",
                   event_id=None),
        InboundEvent(connection=connection, topic="orders/paid", external_id="w-1", payload={"a": [1, 2.5]},
                     resource_id="5001", headers={"X-Shopify-Topic": "orders/paid"},
                     status=InboundEvent.Status.PENDING),
        OutboundWrite(connection=connection, system="erp", order_id=link.pk, subject_type="order", subject_id="5001",
                      action="create_sales_order", external_reference="shopify:5001"),
    ]


def test_compiled_inserts_prepare_each_value_as_save_would(shopify_connection, monkeypatch):
    at = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: at)  # auto_now columns: the same moment both ways
    using = router.db_for_write(OrderLink)
    for obj in _rows(shopify_connection):
        _prepared_insert(obj, using)  # the first call compiles, the second takes the quick path
        _, params = _prepared_insert(obj, using)
        assert _comparable(params) == _as_save_would(obj, using), type(obj).__name__


def test_a_row_inserted_the_quick_way_reads_back_as_saved(shopify_connection):
    using = router.db_for_write(OrderLink)
    link = _rows(shopify_connection)[0]
    insert_row(OrderEvent(order_id=link.pk, at=timezone.now(), kind=OrderEvent.Kind.UPDATED, message="é 12.30 GBP"),
               using)
    insert_row(OrderEvent(order_id=link.pk, at=timezone.now(), kind=OrderEvent.Kind.UPDATED, message="second"), using)
    stored = OrderLink.objects.get(pk=link.pk)
    assert stored.payload == {"id": 5001, "total_price": "12.30", "note": None}
    assert stored.state == OrderLink.State.RECEIVED
    assert list(OrderEvent.objects.filter(order_id=link.pk).order_by("pk").values_list("kind", "message")) == [
        ("updated", "é 12.30 GBP"), ("updated", "second")]
    assert Decimal("12.30") == Decimal(stored.payload["total_price"])


def test_a_value_prepared_before_the_transaction_is_sent_as_the_insert_would_prepare_it(shopify_connection,
                                                                                       monkeypatch):
    at = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: at)  # auto_now columns: the same moment both ways
    using = router.db_for_write(OrderLink)
    payload = {"id": 5002, "total_price": "7.10", "lines": [{"sku": "MUG-001", "note": "é"}], "gift": None}
    link = OrderLink(connection=shopify_connection, storefront_order_id="5002", order_number="#5002",
                     state=OrderLink.State.RECEIVED, payload=payload)
    _prepared_insert(link, using)  # compiled
    ready = {"payload": prepared_value(OrderLink, "payload", payload, using)}
    assert _comparable(_prepared_insert(link, using, ready=ready)[1]) == _comparable(_prepared_insert(link, using)[1])
    insert_row(link, using, ready=ready)
    assert OrderLink.objects.get(pk=link.pk).payload == payload


def test_an_insert_that_ignores_conflicts_is_compiled_as_bulk_create_would(shopify_connection):
    from django.db.models.constants import OnConflict

    from integrations.models import CustomerLink

    using = router.db_for_write(CustomerLink)
    row = CustomerLink(connection=shopify_connection, key="email:ann@example.com", erp_customer_id="C-1")
    statement, params = _prepared_insert(row, using, OnConflict.IGNORE)
    query = sql.InsertQuery(CustomerLink, on_conflict=OnConflict.IGNORE)
    fields = [f for f in CustomerLink._meta.local_concrete_fields if f is not CustomerLink._meta.auto_field]
    query.insert_values(fields, [row])
    [(expected, expected_params)] = query.get_compiler(using=using).as_sql()
    assert (statement, _comparable(params)) == (expected, _comparable(expected_params))
    assert ("INSERT OR IGNORE" in statement or "ON CONFLICT DO NOTHING" in statement) and "RETURNING" not in statement


def test_a_key_remembered_twice_keeps_its_first_account(shopify_connection):
    from integrations.flows.orders.customers import _remember_customer
    from integrations.models import CustomerLink

    link = _rows(shopify_connection)[0]
    _remember_customer(link, ["id:77", "email:ann@example.com"], "C-1")
    _remember_customer(link, ["email:ann@example.com", "phone:+441"], "C-2")  # a concurrent worker's late answer
    assert dict(CustomerLink.objects.filter(connection=shopify_connection).values_list("key", "erp_customer_id")) == {
        "id:77": "C-1", "email:ann@example.com": "C-1", "phone:+441": "C-2"}


def test_a_write_marked_succeeded_reads_back_as_the_orm_would_store_it(shopify_connection):
    from integrations.writes import outbound_write, write_succeeded

    link = _rows(shopify_connection)[0]
    with outbound_write(action="create_customer", idempotency_key="shopify:customer:77", order=link,
                        system="rest_erp", finish=False) as write:
        assert OutboundWrite.objects.get(pk=write.pk).status == OutboundWrite.Status.STARTED
    before = timezone.now()
    write_succeeded(write.pk, "C-" + "9" * 120)  # longer than the column: cut as before
    stored = OutboundWrite.objects.get(pk=write.pk)
    assert (stored.status, stored.response_id) == (OutboundWrite.Status.SUCCEEDED, "C-" + "9" * 98)
    assert before <= stored.finished_at <= timezone.now()
    assert OutboundWrite.objects.filter(status=OutboundWrite.Status.STARTED).count() == 0
