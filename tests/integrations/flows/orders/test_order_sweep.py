"""The orders sweep: what a lost, killed or failed task left behind is re-run without a person,
each order still posted once, and what keeps failing ends as an owned exception."""
import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from exceptions_queue.models import ExceptionRecord
from integrations import tasks
from integrations.connectors.base import PermanentError
from integrations.flows import orders as order_flow
from integrations.flows.orders.sweep import orders_sweep
from integrations.models import InboundEvent, OrderEvent, OrderLink
from tests.payloads import deliver_shopify_webhook, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


_deliver = deliver_shopify_webhook


def _ago(**kw):
    return timezone.now() - timedelta(**kw)


def _orders_failed_in_an_outage(client, order_setup, capture, count):
    order_setup.erp.outage = True
    for n in range(count):
        _deliver(client, shopify_order(number=3000 + n), capture)
    return list(OrderLink.objects.order_by("pk"))


def _retry_due_now():
    OrderLink.objects.filter(next_retry_at__isnull=False).update(next_retry_at=_ago(seconds=1))


def test_after_an_erp_outage_the_sweep_posts_every_order_once_and_resolves_its_exception(
    client, order_setup, django_capture_on_commit_callbacks
):
    links = _orders_failed_in_an_outage(client, order_setup, django_capture_on_commit_callbacks, 3)
    for link in links:
        assert link.state == OrderLink.State.FAILED and link.next_retry_at is not None
    assert sorted(ExceptionRecord.objects.values_list("type_code", "status")) == [("erp_unavailable", "open")] * 3

    order_setup.erp.outage = False
    _retry_due_now()
    counts = orders_sweep()

    assert (counts["orders_retried"], counts["orders_posted"], counts["errors"]) == (3, 3, 0)
    references = sorted(o["external_reference"] for o in order_setup.erp.sales_orders)
    assert references == sorted(link.external_reference for link in links)
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTED}
    assert set(OrderLink.objects.values_list("next_retry_at", flat=True)) == {None}
    assert set(ExceptionRecord.objects.values_list("status", flat=True)) == {"resolved"}
    assert orders_sweep()["orders_retried"] == 0  # nothing left: a second run posts nothing again
    assert len(order_setup.erp.sales_orders) == 3


def test_a_sweep_while_the_erp_is_still_down_reposts_nothing_and_asks_it_once(
    client, order_setup, django_capture_on_commit_callbacks
):
    _orders_failed_in_an_outage(client, order_setup, django_capture_on_commit_callbacks, 3)
    _retry_due_now()
    due = dict(OrderLink.objects.values_list("pk", "next_retry_at"))
    before = order_setup.erp.requests_count

    counts = orders_sweep()

    assert order_setup.erp.requests_count - before == 1
    assert counts["erp_down"] is True and counts["orders_retried"] == 0
    assert dict(OrderLink.objects.values_list("pk", "next_retry_at")) == due  # still due, for the next run
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.FAILED}
    assert order_setup.erp.sales_orders == []


def test_an_order_whose_automatic_re_post_is_not_due_yet_is_left_to_its_backoff(
    client, order_setup, django_capture_on_commit_callbacks
):
    [link] = _orders_failed_in_an_outage(client, order_setup, django_capture_on_commit_callbacks, 1)
    order_setup.erp.outage = False
    assert link.next_retry_at > timezone.now()
    before = order_setup.erp.requests_count

    assert orders_sweep()["orders_retried"] == 0
    assert order_setup.erp.requests_count == before  # not even the health check
    assert OrderLink.objects.get().state == OrderLink.State.FAILED


def test_one_order_that_raises_does_not_stop_the_others(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    first, bad, last = _orders_failed_in_an_outage(client, order_setup, django_capture_on_commit_callbacks, 3)
    order_setup.erp.outage = False
    _retry_due_now()
    real_post = order_flow.order_post_to_erp

    def post(*, order_id, **kw):
        if order_id == bad.pk:
            raise RuntimeError("a bug in one order")
        return real_post(order_id=order_id, **kw)

    monkeypatch.setattr(order_flow, "order_post_to_erp", post)
    counts = orders_sweep()

    assert (counts["orders_retried"], counts["orders_posted"], counts["errors"]) == (3, 2, 1)
    states = dict(OrderLink.objects.values_list("pk", "state"))
    assert states == {first.pk: "posted", bad.pk: "failed", last.pk: "posted"}
    monkeypatch.setattr(order_flow, "order_post_to_erp", real_post)
    assert orders_sweep()["orders_posted"] == 1  # still due: the next run takes it
    assert len(order_setup.erp.sales_orders) == 3


def test_an_event_whose_task_was_lost_is_processed_by_the_sweep(client, order_setup):
    # The webhook was stored and answered, but its task never ran (the commit callback is dropped).
    event_id = post_shopify_webhook(client, shopify_order(number=3100)).json()["event"]
    assert InboundEvent.objects.get(pk=event_id).status == InboundEvent.Status.PENDING

    assert tasks.sweep_orders()["events_retried"] == 0  # a fresh event is its own task's business
    InboundEvent.objects.filter(pk=event_id).update(received_at=_ago(minutes=3))
    counts = tasks.sweep_orders()

    assert (counts["events_retried"], counts["events_done"]) == (1, 1)
    assert InboundEvent.objects.get(pk=event_id).status == InboundEvent.Status.DONE
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def test_an_event_processing_past_its_lease_is_run_again(client, order_setup):
    event_id = post_shopify_webhook(client, shopify_order(number=3200)).json()["event"]
    # What a worker killed while applying the event leaves: claimed, never finished.
    InboundEvent.objects.filter(pk=event_id).update(status=InboundEvent.Status.PROCESSING, attempts=1,
                                                    claimed_at=_ago(seconds=30), received_at=_ago(minutes=5))
    assert orders_sweep()["events_retried"] == 0  # within the lease: that worker may still be alive

    InboundEvent.objects.filter(pk=event_id).update(claimed_at=_ago(minutes=3))
    counts = orders_sweep()

    assert (counts["events_retried"], counts["events_done"]) == (1, 1)
    event = InboundEvent.objects.get(pk=event_id)
    assert event.status == InboundEvent.Status.DONE and event.attempts == 2
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def test_a_malformed_event_is_left_to_its_exception(client, order_setup, django_capture_on_commit_callbacks):
    payload = shopify_order()
    del payload["line_items"][0]["quantity"]
    _deliver(client, payload, django_capture_on_commit_callbacks)
    InboundEvent.objects.update(claimed_at=_ago(hours=2), received_at=_ago(hours=2))

    assert orders_sweep()["events_retried"] == 0
    assert ExceptionRecord.objects.get().occurrences == 1


def _message_for_an_order_not_readable_yet(client, order_id):
    """A commercetools Subscription message whose order the API does not return (404) yet; its
    task ran once and failed."""
    message = {"id": f"msg-{order_id}", "type": "OrderCreated", "version": 1, "sequenceNumber": 1,
               "resource": {"typeId": "order", "id": order_id}}
    response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(message),
                           content_type="application/json",
                           headers={"Authorization": "Bearer sandbox-subscription-token"})
    assert response.status_code == 200, response.content
    event = InboundEvent.objects.get(external_id=f"message:msg-{order_id}")
    with pytest.raises(PermanentError):
        tasks.process_inbound_event(event.pk)
    event.refresh_from_db()
    return event


def test_an_event_that_keeps_failing_ends_as_one_event_stuck_exception_not_retried_for_ever(
    client, order_setup, settings
):
    settings.ORDER_SWEEP = {"event_max_attempts": 3}
    event = _message_for_an_order_not_readable_yet(client, "ct-late-order")
    assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, 1)

    assert orders_sweep()["events_retried"] == 0  # its backoff: not again within minutes
    for attempt in (2, 3):
        InboundEvent.objects.filter(pk=event.pk).update(claimed_at=_ago(hours=2))
        assert orders_sweep()["events_retried"] == 1
        event.refresh_from_db()
        assert (event.status, event.attempts) == (InboundEvent.Status.FAILED, attempt)

    InboundEvent.objects.filter(pk=event.pk).update(claimed_at=_ago(hours=2))
    reads = len(order_setup.commercetools.requests_seen)
    counts = orders_sweep()
    assert (counts["events_retried"], counts["events_stuck"]) == (0, 1)
    assert len(order_setup.commercetools.requests_seen) == reads  # raised, not tried a fourth time
    stuck = ExceptionRecord.objects.get(type_code="event_stuck")
    assert (stuck.key, stuck.team, stuck.status, stuck.retry_args) == (
        f"event_stuck:event:{event.pk}", "ops", "open", {"event_id": event.pk})
    assert stuck.title == "Event message/OrderCreated for ct-late-order keeps failing"
    assert stuck.context["storefront"] == "commercetools shop" and "404" in stuck.context["last_error"]
    assert "after 3 attempts" in stuck.message

    for _ in range(2):  # later runs leave it to the person who owns it now
        counts = orders_sweep()
        assert (counts["events_retried"], counts["events_stuck"]) == (0, 0)
    assert ExceptionRecord.objects.get(pk=stuck.pk).occurrences == 1

    # The order becomes readable and a late task processes the event: the exception clears itself.
    order_setup.commercetools.create_order(
        id="ct-late-order", customer_email="late@example.co.uk", currency="GBP", country="GB", payment_state="Paid",
        line_items=[{"sku": "MUG-001", "name": "Mug", "quantity": 1, "price": "9.50", "tax_rate": 0.2}])
    assert order_flow.inbound_event_process(event_id=event.pk) == "posted"
    orders_sweep()
    stuck.refresh_from_db()
    assert stuck.status == "resolved"
    assert stuck.activity.filter(action="auto_resolved").exists()
    assert len(order_setup.erp.sales_orders) == 1


def test_a_stuck_event_done_some_other_way_has_its_exception_resolved_by_the_sweep(client, order_setup, settings):
    settings.ORDER_SWEEP = {"event_max_attempts": 1}
    event = _message_for_an_order_not_readable_yet(client, "ct-gone-order")
    InboundEvent.objects.filter(pk=event.pk).update(claimed_at=_ago(hours=2))
    assert orders_sweep()["events_stuck"] == 1
    # e.g. marked done by hand after the order was keyed into the ERP directly
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.DONE)

    assert orders_sweep()["events_resolved"] == 1
    stuck = ExceptionRecord.objects.get(type_code="event_stuck")
    assert stuck.status == "resolved" and stuck.activity.filter(action="auto_resolved").exists()


def test_an_order_applied_but_never_posted_is_posted_by_the_sweep(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    def die(**kwargs):
        raise SystemExit("worker killed between applying the event and posting")

    monkeypatch.setattr("integrations.flows.orders.events.order_post_to_erp", die)
    with pytest.raises(SystemExit):
        _deliver(client, shopify_order(number=3300), django_capture_on_commit_callbacks)
    monkeypatch.undo()
    # Applied and claimed for posting in one transaction, never posted.
    assert OrderLink.objects.get().state == OrderLink.State.POSTING
    assert orders_sweep()["orders_retried"] == 0  # within its claim: its own task may be posting it

    OrderLink.objects.update(posting_started_at=_ago(minutes=3))
    assert orders_sweep()["orders_posted"] == 1
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def test_an_order_whose_posting_worker_died_is_linked_not_posted_twice(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    def die(*args, **kwargs):
        raise SystemExit("worker killed after the ERP accepted the order")

    monkeypatch.setattr("integrations.flows.orders.posting.record_posted", die)
    with pytest.raises(SystemExit):
        _deliver(client, shopify_order(number=3400), django_capture_on_commit_callbacks)
    monkeypatch.undo()
    assert OrderLink.objects.get().state == OrderLink.State.POSTING

    OrderLink.objects.update(posting_started_at=timezone.now() - order_flow.CLAIM_LEASE - timedelta(seconds=1))
    assert orders_sweep()["orders_posted"] == 1
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    assert link.timeline.filter(kind=OrderEvent.Kind.LINKED_EXISTING).exists()
    assert len(order_setup.erp.sales_orders) == 1


def test_the_schedules_command_runs_the_sweep_every_minute_in_place_of_the_old_repost(db):
    Schedule.objects.create(name="orders-stuck-repost", func="integrations.tasks.repost_stuck_orders",
                            schedule_type="I", minutes=5, repeats=-1)
    Schedule.objects.create(name="orders-sweep", func="integrations.tasks.old_name", schedule_type="I", minutes=9)
    Schedule.objects.create(name="orders-sweep", func="integrations.tasks.old_name", schedule_type="I", minutes=9)
    for _ in range(2):
        call_command("ledgerline_schedules", verbosity=0)
    [sweep] = Schedule.objects.filter(name="orders-sweep")
    assert (sweep.func, sweep.schedule_type, sweep.minutes, sweep.repeats) == (
        "integrations.tasks.sweep_orders", "I", 1, -1)
    assert not Schedule.objects.filter(name="orders-stuck-repost").exists()


def test_a_task_is_killed_before_it_would_be_handed_out_again_and_never_retried_for_ever():
    q = django_settings.Q_CLUSTER
    assert q["timeout"] < q["retry"]
    assert q["max_attempts"] > 0
    assert q["ack_failures"] is True  # failures are the sweep's to re-run, with backoff
