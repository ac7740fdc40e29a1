"""Backfill over real HTTP: a storefront's orders since a date, read from the sandbox (Shopify by bulk
operation, commercetools by its query API), stored in the inbox and posted by the orders flow once."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from integrations.flows.backfill import backfill_run_execute, backfill_runs_resume, backfill_start
from integrations.flows.backfill import runs as backfill_runs
from integrations.flows.backfill.runs import backfill_recount
from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import BackfillRun, InboundEvent, OrderLink

pytestmark = pytest.mark.django_db


def _no_wait(seconds):
    pass


def _backfill(connection, capture, since=None, **kw):
    run = backfill_start(connection=connection, since=since or timezone.now() - timedelta(days=7))
    with capture(execute=True):
        backfill_run_execute(run_id=run.pk, sleep=_no_wait, **kw)
    backfill_recount(run)  # as the progress bar does: the orders flow ran after the events were stored
    run.refresh_from_db()
    return run


def _shop_orders(shop, count=3):
    orders = [shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": n + 1, "discount": "1.00"},
                                            {"sku": "MUG-001", "quantity": 1}],
                                financial_status="paid") for n in range(count)]
    # One with a tip, a duty and a partly refunded line, which the bulk result alone cannot tell.
    tipped = shop.create_order(line_items=[{"sku": "TEE-BLK-S", "quantity": 2, "duty": {"amount": "3.10"}}],
                               tip="2.00", financial_status="partially_refunded")
    line = tipped["line_items"][0]["id"]
    lines = [{**item, "current_quantity": 1} if item["id"] == line else item for item in tipped["line_items"]]
    shop.update_order(tipped["id"], line_items=lines, refunds=[{"id": 1, "refund_line_items": [{"line_item_id": line, "quantity": 1}],
                                              "transactions": [{"kind": "refund", "status": "success",
                                                                "amount": "10.00"}]}])
    return [*orders, tipped]


def test_a_shopify_backfill_run_twice_posts_each_order_once(order_setup, shopify_connection,
                                                            django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    placed = _shop_orders(shop)

    first = _backfill(shopify_connection, django_capture_on_commit_callbacks)
    assert first.status == BackfillRun.Status.COMPLETED, first.error
    assert (first.found, first.stored, first.skipped, first.posted) == (4, 4, 0, 4)
    sales_orders = order_setup.erp.sales_orders
    assert sorted(so["external_reference"] for so in sales_orders) == sorted(f"shopify:{o['id']}" for o in placed)
    # Each posted for the total the storefront states, and the ERP booked it (a bulk-read order
    # translates as its webhook would).
    for order in placed:
        link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
        assert link.total_minor == int(Decimal(order["total_price"]) * 100)
        assert link.totals_agree is True
    assert all(link.state == OrderLink.State.POSTED for link in OrderLink.objects.all())

    second = _backfill(shopify_connection, django_capture_on_commit_callbacks)
    assert (second.status, second.found, second.stored, second.skipped, second.posted) == (
        BackfillRun.Status.COMPLETED, 4, 0, 4, 0)
    assert len(order_setup.erp.sales_orders) == 4


def test_a_date_beyond_60_days_without_read_all_orders_says_so_and_imports_the_recent_orders(
        order_setup, shopify_connection, django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    old = (timezone.now() - timedelta(days=80)).isoformat()
    shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid", created_at=old,
                      updated_at=old, processed_at=old)
    recent = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")

    run = _backfill(shopify_connection, django_capture_on_commit_callbacks, since=timezone.now() - timedelta(days=90))
    assert run.status == BackfillRun.Status.COMPLETED
    assert run.warning.startswith("read_all_orders is missing: orders older than 60 days cannot be imported")
    assert [link.storefront_order_id for link in OrderLink.objects.all()] == [str(recent["id"])]


def test_a_recent_date_needs_no_read_all_orders(order_setup, shopify_connection, django_capture_on_commit_callbacks):
    order_setup.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    run = _backfill(shopify_connection, django_capture_on_commit_callbacks, since=timezone.now() - timedelta(days=30))
    assert (run.status, run.warning, run.stored) == (BackfillRun.Status.COMPLETED, "", 1)


def test_a_commercetools_backfill_posts_each_order_once_and_the_poller_finds_them_stored(
        order_setup, ct_connection, django_capture_on_commit_callbacks):
    ct = order_setup.commercetools
    for n in range(3):
        ct.create_order(customer_email=f"b{n}@example.de", currency="EUR", country="DE", payment_state="Paid",
                        line_items=[{"sku": "TEE-WHT-M", "name": "Tee", "quantity": n + 1, "price": "15.00",
                                     "tax_rate": 0.19}])
    run = _backfill(ct_connection, django_capture_on_commit_callbacks)
    assert (run.status, run.found, run.stored, run.posted) == (BackfillRun.Status.COMPLETED, 3, 3, 3), run.error
    assert len(order_setup.erp.sales_orders) == 3

    again = _backfill(ct_connection, django_capture_on_commit_callbacks)
    assert (again.stored, again.skipped) == (0, 3)
    with django_capture_on_commit_callbacks(execute=True):
        assert commercetools_orders_poll(connection_code=ct_connection.code) == 0  # same inbox ids
    assert len(order_setup.erp.sales_orders) == 3


def test_a_commercetools_backfill_pages_by_its_cursor(order_setup, ct_connection, django_capture_on_commit_callbacks,
                                                      monkeypatch):
    ct = order_setup.commercetools
    for n in range(5):
        ct.create_order(customer_email=f"p{n}@example.de", currency="EUR", country="DE", payment_state="Paid",
                        line_items=[{"sku": "TEE-WHT-M", "name": "Tee", "quantity": 1, "price": "15.00", "tax_rate": 0.19}])
    monkeypatch.setattr(backfill_runs, "PAGE_SIZE", 2)
    run = _backfill(ct_connection, django_capture_on_commit_callbacks)
    assert (run.found, run.stored) == (5, 5)
    assert run.cursor["after"][1] == OrderLink.objects.order_by("-pk").first().storefront_order_id


class WorkerDied(BaseException):
    """Not an error the flow handles: the process is gone."""


def test_a_run_whose_worker_died_resumes_from_its_cursor(order_setup, shopify_connection,
                                                        django_capture_on_commit_callbacks, monkeypatch):
    shop = order_setup.shopify
    for n in range(3):
        shop.create_order(line_items=[{"sku": "MUG-001", "quantity": n + 1}], financial_status="paid")
    real_store = backfill_runs.order_store
    calls = []

    def dying_store(**kw):
        calls.append(kw["payload"]["id"])
        if len(calls) == 3:
            raise WorkerDied()
        return real_store(**kw)

    monkeypatch.setattr(backfill_runs, "order_store", dying_store)
    run = backfill_start(connection=shopify_connection, since=timezone.now() - timedelta(days=1))
    with pytest.raises(WorkerDied), django_capture_on_commit_callbacks(execute=True):
        backfill_run_execute(run_id=run.pk, sleep=_no_wait)
    run.refresh_from_db()
    assert (run.status, run.stored, run.cursor["done"]) == (BackfillRun.Status.RUNNING, 2, 2)

    monkeypatch.setattr(backfill_runs, "order_store", real_store)
    assert backfill_runs_resume() == 0  # its lease has not expired: the worker may still be alive
    BackfillRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True):
        assert backfill_runs_resume() == 1
    backfill_recount(run)
    run.refresh_from_db()
    assert (run.status, run.found, run.stored, run.posted) == (BackfillRun.Status.COMPLETED, 3, 3, 3)
    assert len(shop.bulk_operations) == 1  # the same bulk operation's result, not a new one
    assert len(order_setup.erp.sales_orders) == 3
    assert InboundEvent.objects.count() == 3


def test_a_failed_run_is_an_owned_exception_whose_retry_resumes_it(order_setup, shopify_connection,
                                                                   django_capture_on_commit_callbacks):
    shop = order_setup.shopify
    shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    shopify_connection.credentials = {"access_token": "shpat_revoked"}
    shopify_connection.save()
    run = _backfill(shopify_connection, django_capture_on_commit_callbacks)
    assert run.status == BackfillRun.Status.FAILED
    assert "Invalid API key or access token" in run.error
    record = ExceptionRecord.objects.get(type_code="backfill_failed")
    assert record.team == "ecommerce" and record.retry_args == {"run_id": run.pk}

    from exceptions_queue.services import exception_retry

    shopify_connection.credentials = {}
    shopify_connection.save()
    with django_capture_on_commit_callbacks(execute=True):
        exception_retry(record=record, actor=None)
    backfill_recount(run)
    run.refresh_from_db()
    assert (run.status, run.stored, run.posted) == (BackfillRun.Status.COMPLETED, 1, 1)


def test_an_inactive_storefront_is_not_backfilled(shopify_connection):
    from integrations.flows.backfill import BackfillRefused

    shopify_connection.active = False
    shopify_connection.save()
    with pytest.raises(BackfillRefused, match="inactive"):
        backfill_start(connection=shopify_connection, since=timezone.now() - timedelta(days=1))


def test_the_schedules_refresh_every_health_line_and_resume_backfills(db, sandbox, shopify_connection):
    from django.core.management import call_command
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    from integrations.models import ConnectionHealthCheck

    call_command("ledgerline_schedules", verbosity=0)
    health = Schedule.objects.get(name="connections: health check")
    assert health.minutes == 15 and Schedule.objects.get(name="backfill: resume").minutes == 5
    assert import_string(health.func)() == 1
    check = ConnectionHealthCheck.objects.get(connection=shopify_connection)
    assert check.status in ("ok", "warn", "error") and check.lines
