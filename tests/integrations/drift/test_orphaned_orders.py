"""Orphaned orders over real HTTP: an order whose webhooks never arrived is found by the
reconciliation poll and posted by the normal order path; a paid order stuck without an ERP Sales
Order becomes one grouped exception for ops, raised once, and resolved when it is posted."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.models import DriftFinding, DriftRun, InboundEvent, OrderLink

pytestmark = pytest.mark.django_db


def _run(capture):
    with capture(execute=True):
        return check_run("orphaned_orders")


def test_an_order_whose_webhooks_were_dropped_is_found_by_the_poll_and_posted(
        order_setup, shopify_connection, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    order = shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 2}], financial_status="paid",
                              deliver="none")
    assert not InboundEvent.objects.exists()  # Shopify never told us

    run = _run(django_capture_on_commit_callbacks)

    assert run.status == DriftRun.Status.OK, run.error
    assert run.summary["recovered"] == 1
    assert [so["external_reference"] for so in order_setup.erp.sales_orders] == [f"shopify:{order['id']}"]
    assert OrderLink.objects.get(storefront_order_id=str(order["id"])).state == OrderLink.State.POSTED
    # The poll's cursor moved on; a second run reads the overlap again and posts nothing twice.
    assert run.summary["cursors"]["shopify"]
    again = _run(django_capture_on_commit_callbacks)
    assert (again.status, again.raised, again.summary["recovered"]) == (DriftRun.Status.OK, 0, 0)
    assert len(order_setup.erp.sales_orders) == 1


def test_a_commercetools_order_never_polled_is_found_and_posted(order_setup, ct_connection,
                                                                 django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    order = ct.create_order(customer_email="ct@example.de", payment_state="Paid",
                            line_items=[{"sku": "MUG-001", "name": "Mug", "quantity": 1, "price": "9.00"}])

    run = _run(django_capture_on_commit_callbacks)

    assert run.status == DriftRun.Status.OK, run.error
    assert run.summary["poll"]["commercetools"]["recovered"]
    assert f"commercetools:{order['id']}" in [so["external_reference"] for so in order_setup.erp.sales_orders]


def test_a_paid_order_stuck_without_an_erp_order_is_raised_once_and_resolved_when_posted(
        order_setup, shopify_connection, django_capture_on_commit_callbacks):
    stuck = OrderLink.objects.create(connection=shopify_connection, storefront_order_id="990001", order_number="#9001",
                                     payment_state="paid", state=OrderLink.State.RECEIVED, currency="GBP",
                                     total_minor=1250, created_at=timezone.now() - timedelta(hours=1))
    fresh = OrderLink.objects.create(connection=shopify_connection, storefront_order_id="990002", order_number="#9002",
                                     payment_state="paid", state=OrderLink.State.RECEIVED)
    OrderLink.objects.create(connection=shopify_connection, storefront_order_id="990003", order_number="#9003",
                             payment_state="pending", state=OrderLink.State.WAITING_PAYMENT,
                             created_at=timezone.now() - timedelta(hours=1))

    first = _run(django_capture_on_commit_callbacks)
    assert (first.status, first.found, first.raised) == (DriftRun.Status.FINDINGS, 1, 1)
    record = ExceptionRecord.objects.get(type_code="drift_orphaned_order")
    assert (record.team, record.order, record.status) == ("ops", stuck, "open")
    assert "#9001" in record.title and fresh.order_number not in record.title

    second = _run(django_capture_on_commit_callbacks)
    assert (second.found, second.raised, second.updated) == (1, 0, 1)
    assert ExceptionRecord.objects.filter(type_code="drift_orphaned_order").count() == 1

    OrderLink.objects.filter(pk=stuck.pk).update(state=OrderLink.State.POSTED, erp_order_id="SO-1")
    third = _run(django_capture_on_commit_callbacks)
    assert (third.status, third.resolved) == (DriftRun.Status.OK, 1)
    record.refresh_from_db()
    assert record.status == "resolved"
    assert DriftFinding.objects.get(key__startswith="orphan:").resolved_at is not None


def test_a_cancelled_order_whose_erp_order_is_still_open_is_found(order_setup, shopify_connection,
                                                                    django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    with django_capture_on_commit_callbacks(execute=True):
        order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid",
                                  deliver="none")
        check_run("orphaned_orders")
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    # The storefront cancelled it; the ERP never heard.
    OrderLink.objects.filter(pk=link.pk).update(state=OrderLink.State.CANCELLED)

    run = _run(django_capture_on_commit_callbacks)
    assert run.summary["erp_still_open"] == 1
    record = ExceptionRecord.objects.get(type_code="drift_erp_order_still_open")
    assert link.erp_order_id in record.message and record.team == "ops"

    order_setup.erp.cancel_order(link.erp_order_id)
    run = _run(django_capture_on_commit_callbacks)
    assert run.resolved == 1
    record.refresh_from_db()
    assert record.status == "resolved"


def test_a_check_already_running_is_not_started_twice(db):
    running = DriftRun.objects.create(check_code="orphaned_orders")
    assert check_run("orphaned_orders") == running
    assert DriftRun.objects.filter(check_code="orphaned_orders").count() == 1
