"""One queued task per order, not per webhook: an order's later events ride with the task of the
one that still waits (integrations.inbox.store, integrations.flows.orders.events)."""
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections as db_connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string

from integrations.connectors import postgres_conninfo
from integrations.flows import orders as order_flow
from integrations.flows.orders import events as order_events
from integrations.flows.orders.sweep import orders_sweep
from integrations.models import InboundEvent, OrderEvent, OrderLink
from tests.payloads import later, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(order_setup, monkeypatch):
    """The order flow with a real queue (django-q2's ORM broker) instead of tasks run inline."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    return order_setup


def queued_tasks() -> list:
    from django_q.models import OrmQ

    return list(OrmQ.objects.order_by("id"))


def run_queue(capture) -> int:
    """Run every queued task as a worker would (taken off the queue, then run), oldest first."""
    ran = 0
    while tasks := queued_tasks():
        task = tasks[0]
        task.delete()
        with capture(execute=True):
            import_string(task.task["func"])(*task.task["args"], **task.task["kwargs"])
        ran += 1
    return ran


def test_an_orders_create_paid_and_updated_stored_together_cost_one_task_and_post_once(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2001, financial_status="pending")
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    paid = later(order, financial_status="paid")
    post_shopify_webhook(client, paid, topic="orders/paid", webhook_id="p")
    post_shopify_webhook(client, later(paid, 2, note="gift"), topic="orders/updated", webhook_id="u")
    [task] = queued_tasks()
    assert task.task["args"][1] == "c"  # the first event's task carries the other two
    assert run_queue(django_capture_on_commit_callbacks) == 1
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.DONE}
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and link.payload["note"] == "gift"
    assert len(queued.erp.sales_orders) == 1
    # Applied in the order they came: waiting for payment, then paid (posted), then the update.
    kinds = list(link.timeline.order_by("pk").values_list("kind", flat=True))
    assert kinds[:2] == [OrderEvent.Kind.RECEIVED, OrderEvent.Kind.WAITING_PAYMENT]
    assert OrderEvent.Kind.POSTED in kinds and kinds.count(OrderEvent.Kind.UPDATED) == 2


def test_an_event_stored_after_its_orders_earlier_one_was_applied_gets_its_own_task(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2002)
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    run_queue(django_capture_on_commit_callbacks)
    post_shopify_webhook(client, later(order), topic="orders/paid", webhook_id="p")
    [task] = queued_tasks()
    assert task.task["args"][1] == "p"
    run_queue(django_capture_on_commit_callbacks)
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.DONE


def test_another_orders_events_are_not_carried(client, queued):
    post_shopify_webhook(client, shopify_order(number=2003), topic="orders/create", webhook_id="a")
    post_shopify_webhook(client, shopify_order(number=2004), topic="orders/create", webhook_id="b")
    assert [t.task["args"][1] for t in queued_tasks()] == ["a", "b"]


def test_a_carrier_that_cannot_be_read_still_applies_the_event_riding_with_it(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2005)
    broken = {**order, "line_items": [{**order["line_items"][0]}]}
    del broken["line_items"][0]["quantity"]
    post_shopify_webhook(client, broken, topic="orders/create", webhook_id="bad")
    post_shopify_webhook(client, later(order), topic="orders/paid", webhook_id="good")
    assert run_queue(django_capture_on_commit_callbacks) == 1
    assert InboundEvent.objects.get(external_id="bad").status == InboundEvent.Status.FAILED
    assert InboundEvent.objects.get(external_id="good").status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().state == OrderLink.State.POSTED


def test_an_event_that_chose_a_rider_as_its_carrier_is_applied_in_the_same_run(
        client, queued, monkeypatch, django_capture_on_commit_callbacks):
    order = shopify_order(number=2006, financial_status="pending")
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, later(order, financial_status="paid"), topic="orders/paid", webhook_id="p")
    process = order_events._event_process

    def paid_then_a_late_update(event_id, event, **kwargs):
        if event.external_id == "p":  # while the rider is applied, the next webhook is stored
            post_shopify_webhook(client, later(order, 3, financial_status="paid", note="late"),
                                 topic="orders/updated", webhook_id="u")
        return process(event_id, event, **kwargs)

    monkeypatch.setattr(order_events, "_event_process", paid_then_a_late_update)
    assert run_queue(django_capture_on_commit_callbacks) == 1  # "u" rode with "p", itself riding with "c"
    assert InboundEvent.objects.get(external_id="u").status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().payload["note"] == "late"


def test_riders_left_by_a_carrier_whose_worker_died_are_applied_by_the_sweep(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2007, financial_status="pending")
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, later(order, financial_status="paid"), topic="orders/paid", webhook_id="p")
    [task] = queued_tasks()
    task.delete()
    carrier = InboundEvent.objects.get(external_id="c")
    with django_capture_on_commit_callbacks(execute=True):  # applied, then the worker died before the riders
        order_flow.inbound_event_process(event_id=carrier.pk, riders=False)
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.PENDING
    InboundEvent.objects.filter(external_id="p").update(received_at=timezone.now() - timedelta(minutes=3))
    with django_capture_on_commit_callbacks(execute=True):
        orders_sweep()
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().state == OrderLink.State.POSTED


@pytest.fixture
def batched(queued, monkeypatch):
    """Orders wait in the ERP's batch after their first event (another worker holds the batch's wait)."""
    from integrations.flows.orders import batches, posting

    monkeypatch.setattr(posting, "batch_size", lambda erp: 100)
    monkeypatch.setattr(batches._sender, "wake", lambda *args, **kwargs: None)
    return queued


def _timeline(link) -> list[tuple]:
    return list(link.timeline.order_by("pk").values_list("kind", "message", "event__external_id"))


def test_an_orders_paid_carrying_the_order_as_already_applied_costs_a_claim_and_its_timeline_entry(
        client, batched, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order = shopify_order(number=2008)  # paid at checkout: orders/paid carries the same order
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, order, topic="orders/paid", webhook_id="p")
    carrier = InboundEvent.objects.get(external_id="c")
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            order_flow.inbound_event_process(event_id=carrier.pk, riders=False)
    carrier_statements = len(queries)
    with CaptureQueriesContext(connection) as queries:
        order_events._riders_process(InboundEvent.objects.select_related("connection").get(pk=carrier.pk))
    link = OrderLink.objects.get()
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.DONE
    assert link.state == OrderLink.State.POSTING  # still waiting for its batch, posted once
    assert _timeline(link)[-1] == (OrderEvent.Kind.UPDATED, "orders/paid: payment paid", "p")
    # Found, claimed with its timeline entry, then nothing more: far fewer statements than applying it.
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 2 and len(queries) < carrier_statements


def test_an_unchanged_rider_leaves_the_order_as_applying_it_in_full_would(
        client, batched, monkeypatch, django_capture_on_commit_callbacks):
    def deliver_and_run(number):
        order = shopify_order(number=number, customer_id=number, email=f"buyer{number}@example.com")  # new buyers both
        post_shopify_webhook(client, order, topic="orders/create", webhook_id=f"c{number}")
        post_shopify_webhook(client, order, topic="orders/paid", webhook_id=f"p{number}")
        run_queue(django_capture_on_commit_callbacks)
        link = OrderLink.objects.get(order_number__endswith=str(number))
        # which webhook each entry came from: c(reate) or p(aid), by its id without the order number
        return link.state, link.payload, [(kind, message, ref and ref[0]) for kind, message, ref in _timeline(link)]

    quick = deliver_and_run(2009)
    monkeypatch.setattr(order_events, "UNCHANGED_RIDER_TOPICS", ())  # every rider applied in full
    full = deliver_and_run(2010)
    assert quick[0] == full[0] == OrderLink.State.POSTING
    assert quick[1]["id"] != full[1]["id"]
    # The same entries; the quick one is applied in the carrier's own transaction, so its entry
    # comes straight after "posting", before the new buyer's account is created.
    assert sorted((kind, ref) for kind, _, ref in quick[2]) == sorted((kind, ref) for kind, _, ref in full[2])
    assert [(kind, ref) for kind, _, ref in quick[2]][:3] == [
        (OrderEvent.Kind.RECEIVED, "c"), (OrderEvent.Kind.POSTING, None), (OrderEvent.Kind.UPDATED, "p")]
    assert [m for k, m, _ in quick[2] if k == OrderEvent.Kind.UPDATED] == [
        m for k, m, _ in full[2] if k == OrderEvent.Kind.UPDATED]
    assert (OrderEvent.Kind.UPDATED, "orders/paid: payment paid", "p") in quick[2]


def test_a_rider_that_changes_the_order_is_applied_in_full(client, batched, django_capture_on_commit_callbacks):
    order = shopify_order(number=2011)
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, later(order, note="leave at the door"), topic="orders/updated", webhook_id="u")
    run_queue(django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert InboundEvent.objects.get(external_id="u").status == InboundEvent.Status.DONE
    assert link.payload["note"] == "leave at the door" and link.state == OrderLink.State.POSTING


def test_an_unchanged_rider_waiting_when_its_carrier_claims_the_order_is_applied_in_that_transaction(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2012)  # paid at checkout, posted at once (no batch)
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, order, topic="orders/paid", webhook_id="p")
    assert run_queue(django_capture_on_commit_callbacks) == 1
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and len(queued.erp.sales_orders) == 1
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.DONE
    kinds = [(kind, ref) for kind, _, ref in _timeline(link)]
    assert kinds[:3] == [(OrderEvent.Kind.RECEIVED, "c"), (OrderEvent.Kind.POSTING, None), (OrderEvent.Kind.UPDATED, "p")]
    assert kinds[-1] == (OrderEvent.Kind.POSTED, None) and kinds.count((OrderEvent.Kind.UPDATED, "p")) == 1


def test_an_unchanged_rider_of_an_order_already_in_the_erp_is_applied_in_full(
        client, queued, django_capture_on_commit_callbacks):
    order = shopify_order(number=2013)  # posted at once (no batch): the rider looks at the posted order
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, order, topic="orders/paid", webhook_id="p")
    carrier = InboundEvent.objects.select_related("connection").get(external_id="c")
    with django_capture_on_commit_callbacks(execute=True):  # the carrier alone (no rider in its transaction)
        order_flow.inbound_event_process(event_id=carrier.pk, riders=False)
    with django_capture_on_commit_callbacks(execute=True):
        order_events._riders_process(carrier)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and len(queued.erp.sales_orders) == 1
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.DONE
    assert _timeline(link)[-1][0] == OrderEvent.Kind.UPDATED


def test_a_rider_whose_short_claim_fails_leaves_the_next_rider_applied_and_itself_to_the_sweep(
        client, batched, monkeypatch, django_capture_on_commit_callbacks):
    from django.db import OperationalError

    order = shopify_order(number=2013)
    post_shopify_webhook(client, order, topic="orders/create", webhook_id="c")
    post_shopify_webhook(client, order, topic="orders/paid", webhook_id="p")
    post_shopify_webhook(client, later(order, note="ring twice"), topic="orders/updated", webhook_id="u")

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(order_events, "_unchanged_rider_apply", locked)
    # the carrier's own transaction leaves "p" to the look after it, where its short claim fails
    monkeypatch.setattr(order_events, "_unchanged_rider_take", lambda *args: ("other", None))
    assert run_queue(django_capture_on_commit_callbacks) == 1
    assert InboundEvent.objects.get(external_id="p").status == InboundEvent.Status.PENDING  # the sweep's
    assert InboundEvent.objects.get(external_id="u").status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().payload["note"] == "ring twice"


on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement store is PostgreSQL's")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_webhook_is_stored_with_its_task_in_one_statement_and_a_redelivery_writes_nothing(
        client, queued):
    post_shopify_webhook(client, shopify_order(number=2089), topic="orders/create", webhook_id="first")
    order = shopify_order(number=2090, financial_status="pending")
    with CaptureQueriesContext(connection) as create:
        assert post_shopify_webhook(client, order, topic="orders/create", webhook_id="c").json()["status"] == "accepted"
    with CaptureQueriesContext(connection) as paid:
        post_shopify_webhook(client, later(order, financial_status="paid"), topic="orders/paid", webhook_id="p")
    # (The connection was looked up for the first webhook and is kept; the statement is its own
    # transaction: no BEGIN or COMMIT round trips.)
    assert [q["sql"][:4] for q in create.captured_queries] == ["WITH"]
    assert [q["sql"][:4] for q in paid.captured_queries] == ["WITH"]
    assert [t.task["args"][1] for t in queued_tasks()] == ["first", "c"]  # "p" rides with "c"
    again = post_shopify_webhook(client, later(order, financial_status="paid"), topic="orders/paid", webhook_id="p")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert InboundEvent.objects.count() == 3 and len(queued_tasks()) == 2


@pytest.mark.django_db(transaction=True)
def test_events_stored_while_a_worker_claims_their_carriers_are_each_applied_once(client, queued):
    """The intake's look for a carrier races the worker's claim of it: each orders/paid either rides
    (and its carrier applies it) or gets a task of its own; none is left waiting with neither."""
    orders = [shopify_order(number=2100 + i, financial_status="pending") for i in range(40)]
    done, failures = threading.Event(), []

    def worker():
        try:
            while True:
                finished = done.is_set()  # before the look, so the last webhook's task is seen
                tasks = queued_tasks()
                if not tasks:
                    if finished:
                        return
                    continue
                tasks[0].delete()
                import_string(tasks[0].task["func"])(*tasks[0].task["args"], **tasks[0].task["kwargs"])
        except Exception as exc:  # reported by the test's thread
            failures.append(exc)
        finally:
            db_connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for i, order in enumerate(orders):
            post_shopify_webhook(client, order, topic="orders/create", webhook_id=f"c{i}")
            if i % 2:  # sent the moment the worker has claimed the order's first event
                deadline = time.monotonic() + 10
                while (InboundEvent.objects.filter(external_id=f"c{i}", status=InboundEvent.Status.PENDING).exists()
                       and time.monotonic() < deadline):
                    pass
            post_shopify_webhook(client, later(order, financial_status="paid"), topic="orders/paid", webhook_id=f"p{i}")
    finally:
        done.set()
        thread.join(120)
    assert not failures and not thread.is_alive()
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.DONE}
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTED}
    assert len(queued.erp.sales_orders) == 40


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_webhook_on_a_connection_the_server_dropped_is_stored_on_a_new_one(client, queued):
    post_shopify_webhook(client, shopify_order(number=2091), topic="orders/create", webhook_id="before")
    kept = connection.connection.info.backend_pid
    with psycopg.connect(postgres_conninfo()) as other:  # the server ends the kept one
        other.execute("SELECT pg_terminate_backend(%s)", (kept,))
    connection.health_check_done = False  # as each request served starts (the test client leaves it out)
    response = post_shopify_webhook(client, shopify_order(number=2092), topic="orders/create", webhook_id="after")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert connection.connection.info.backend_pid != kept
    assert [t.task["args"][1] for t in queued_tasks()] == ["before", "after"]

