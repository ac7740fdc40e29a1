"""Order to cash over real HTTP: Shopify webhooks in, exactly one ERP Sales Order out."""
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_retry
from integrations.flows import orders as order_flow
from integrations.models import OutboundWrite, InboundEvent, OrderEvent, OrderLink
from mappings.models import SkuMapping
from tests.payloads import deliver_shopify_webhook, later, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


_deliver = deliver_shopify_webhook


def test_a_paid_order_becomes_one_sales_order_with_customer_lines_and_depot(
    client, order_setup, django_capture_on_commit_callbacks
):
    payload = shopify_order(
        number=1043,
        lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00", "discounts": ["5.00"]},
               {"sku": None, "title": "Gift wrap", "price": "3.50", "quantity": 1, "tax_price": "0.70"}],
        shipping=[{"price": "4.99", "tax_price": "1.00"}],
    )
    _deliver(client, payload, django_capture_on_commit_callbacks)

    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    [sales_order] = order_setup.erp.sales_orders
    assert sales_order["external_reference"] == f"shopify:{payload['id']}"
    assert sales_order["id"] == link.erp_order_id
    assert sales_order["currency"] == "GBP" and sales_order["depot"] == "MAIN"
    lines = [(l["kind"], l["item_code"], l["quantity"], l["line_total"], l["tax_code"]) for l in sales_order["lines"]]
    assert lines == [
        ("item", "TEE-BLK-M", 2, "40.00", "T1"),
        ("discount", "DISCOUNT", 1, "-5.00", "T1"),
        ("item", "CUSTOM", 1, "3.50", "T1"),
        ("shipping", "SHIPPING", 1, "4.99", "T1"),
    ]
    assert sales_order["total"] == "43.49"
    [customer] = order_setup.erp.customers
    assert customer["email"] == "zoe@example.com" and sales_order["customer_id"] == customer["id"]
    kinds = list(link.timeline.values_list("kind", flat=True))
    assert kinds[0] == OrderEvent.Kind.RECEIVED and kinds[-1] == OrderEvent.Kind.POSTED
    # Item lines name the storefront line they come from, so the ERP's dispatches can say which
    # Shopify line left the warehouse; charges and discounts name none.
    ids = [str(item["id"]) for item in payload["line_items"]]
    assert [l["line_reference"] for l in sales_order["lines"]] == [ids[0], "", ids[1], ""]


def test_the_same_webhook_delivered_five_times_makes_one_sales_order(client, order_setup, django_capture_on_commit_callbacks):
    payload = shopify_order()
    for _ in range(5):
        _deliver(client, payload, django_capture_on_commit_callbacks, webhook_id="wh-repeated")
    assert len(order_setup.erp.sales_orders) == 1
    assert InboundEvent.objects.count() == 1
    assert OrderLink.objects.get().state == OrderLink.State.POSTED


def test_create_paid_and_updated_events_for_one_order_make_one_sales_order(client, order_setup, django_capture_on_commit_callbacks):
    created = shopify_order(financial_status="pending")
    _deliver(client, created, django_capture_on_commit_callbacks, topic="orders/create")
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.WAITING_PAYMENT
    assert order_setup.erp.sales_orders == []

    paid = later(created, financial_status="paid")
    _deliver(client, paid, django_capture_on_commit_callbacks, topic="orders/paid")
    _deliver(client, later(paid, financial_status="paid", note="gift"), django_capture_on_commit_callbacks, topic="orders/updated")
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    assert len(order_setup.erp.sales_orders) == 1


def test_an_older_payload_redelivered_late_never_overwrites_newer_state(client, order_setup, django_capture_on_commit_callbacks):
    pending = shopify_order(financial_status="pending")
    paid = later(pending, minutes=5, financial_status="paid", email="new@example.com")
    _deliver(client, paid, django_capture_on_commit_callbacks, topic="orders/paid")
    # Shopify retries a failed orders/create delivery hours later, with its original payload.
    _deliver(client, pending, django_capture_on_commit_callbacks, topic="orders/create")
    link = OrderLink.objects.get()
    assert link.payment_state == "paid" and link.customer_email == "new@example.com"
    assert link.state == OrderLink.State.POSTED
    assert link.timeline.filter(kind=OrderEvent.Kind.STALE_IGNORED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_taking_the_same_event_at_once_make_one_sales_order(client, order_setup, monkeypatch):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)  # the two workers below take the event
    order_setup.erp.latency = 0.05  # keeps both workers inside the ERP calls at the same time
    payload = shopify_order()
    response = post_shopify_webhook(client, payload, webhook_id="wh-race")
    event_id = response.json()["event"]
    results, barrier = [], threading.Barrier(2)

    def worker():
        from django.db import connection

        barrier.wait()
        try:
            results.append(order_flow.inbound_event_process(event_id=event_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["posted", "taken"]
    assert len(order_setup.erp.sales_orders) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_posting_the_same_order_from_different_events_make_one_sales_order(client, order_setup, monkeypatch):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    order_setup.erp.latency = 0.05
    paid = shopify_order()
    updated = later(paid, note="x")
    ids = [post_shopify_webhook(client, p, topic=t).json()["event"] for p, t in ((paid, "orders/paid"), (updated, "orders/updated"))]
    barrier = threading.Barrier(2)

    def worker(event_id):
        from django.db import connection

        barrier.wait()
        try:
            order_flow.inbound_event_process(event_id=event_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(order_setup.erp.sales_orders) == 1
    assert OrderLink.objects.get().state == OrderLink.State.POSTED


@pytest.mark.django_db(transaction=True)
def test_an_order_inserted_by_another_worker_meanwhile_is_applied_on_that_row(client, order_setup, monkeypatch):
    """Two events of a new order: the second worker looked for the order before the first one had
    committed it, so its insert meets the first one's row. It starts again on that row: one order,
    one Sales Order, both events done (on PostgreSQL the failed insert must not poison the rest)."""
    from integrations.flows.orders import events as order_events

    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    paid = shopify_order()
    updated = later(paid, note="gift")
    first = post_shopify_webhook(client, paid, topic="orders/paid").json()["event"]
    assert order_flow.inbound_event_process(event_id=first) == "posted"
    second = post_shopify_webhook(client, updated, topic="orders/updated").json()["event"]

    real_first_row, looks = order_events.first_row, []

    def first_look_misses_the_row(name, *args):
        looks.append(name)
        if name == "orders:link-for-update" and looks.count(name) == 1:
            return None  # as if read before the other worker's commit
        return real_first_row(name, *args)

    monkeypatch.setattr(order_events, "first_row", first_look_misses_the_row)
    order_flow.inbound_event_process(event_id=second)

    assert looks.count("orders:link-for-update") == 2  # it started again
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and link.payload["note"] == "gift"
    assert len(order_setup.erp.sales_orders) == 1
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.DONE}
    kinds = list(link.timeline.values_list("kind", flat=True))
    assert kinds.count(OrderEvent.Kind.RECEIVED) == 1 and kinds.count(OrderEvent.Kind.UPDATED) == 1


def test_a_worker_dying_after_the_erp_accepted_leaves_one_sales_order_after_replay(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.flows.orders import posting

    real_record = posting.record_posted

    def die(*args, **kwargs):
        raise SystemExit("worker killed after the ERP accepted the order")

    monkeypatch.setattr(posting, "record_posted", die)
    payload = shopify_order()
    with pytest.raises(SystemExit):
        _deliver(client, payload, django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTING and link.erp_order_id == ""
    assert len(order_setup.erp.sales_orders) == 1
    # The attempt row shows the crash: started, never finished.
    assert OutboundWrite.objects.get(action="create_sales_order").status == OutboundWrite.Status.STARTED

    # django-q2 hands the task out again after its retry period (longer than the claim lease).
    monkeypatch.setattr(posting, "record_posted", real_record)
    OrderLink.objects.filter(pk=link.pk).update(posting_started_at=timezone.now() - order_flow.CLAIM_LEASE - timedelta(seconds=1))
    InboundEvent.objects.update(claimed_at=timezone.now() - order_flow.CLAIM_LEASE - timedelta(seconds=1))
    assert order_flow.inbound_event_process(event_id=InboundEvent.objects.get().pk) == "posted"

    link.refresh_from_db()
    assert len(order_setup.erp.sales_orders) == 1
    assert link.state == OrderLink.State.POSTED and link.erp_order_id == order_setup.erp.sales_orders[0]["id"]
    assert link.timeline.filter(kind=OrderEvent.Kind.LINKED_EXISTING).exists()


def test_an_unknown_sku_becomes_an_owned_exception_and_its_retry_posts_after_the_mapping(
    client, order_setup, shopify_connection, django_capture_on_commit_callbacks
):
    payload = shopify_order(number=1043, lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}])
    _deliver(client, payload, django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.FAILED
    assert order_setup.erp.sales_orders == []
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.team, exc.status, exc.sku, exc.order_id) == ("unknown_sku", "ops", "open", "TEE-RED-M", link.pk)
    assert exc.message == "SKU TEE-RED-M on order #1043 has no ERP item: add it under Mappings → SKUs, then retry."

    assert exception_retry(record=exc) is False  # nothing fixed yet: still failing, still open
    exc.refresh_from_db()
    assert exc.status == "open" and exc.occurrences == 2

    SkuMapping.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="TEE-BLK-M")
    assert exception_retry(record=exc) is True
    exc.refresh_from_db()
    link.refresh_from_db()
    assert exc.status == "resolved"
    assert link.state == OrderLink.State.POSTED
    [sales_order] = order_setup.erp.sales_orders
    assert sales_order["lines"][0]["item_code"] == "TEE-BLK-M"


def test_a_kit_sku_posts_each_component(client, order_setup, shopify_connection, django_capture_on_commit_callbacks):
    kit = SkuMapping.objects.create(connection=shopify_connection, storefront_sku="GIFT-SET", erp_item_code="")
    kit.components.create(erp_item_code="TEE-BLK-M", quantity=1)
    kit.components.create(erp_item_code="MUG-001", quantity=2)
    _deliver(client, shopify_order(lines=[{"sku": "GIFT-SET", "price": "30.01", "quantity": 2, "tax_rate": "0"}]),
             django_capture_on_commit_callbacks)
    [sales_order] = order_setup.erp.sales_orders
    lines = [(l["item_code"], l["quantity"]) for l in sales_order["lines"]]
    assert lines == [("TEE-BLK-M", 2), ("MUG-001", 4)]
    assert sum(Decimal(l["line_total"]) for l in sales_order["lines"]) == Decimal("60.02")


def test_a_missing_tax_mapping_is_a_finance_exception(client, order_setup, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(lines=[{"sku": "MUG-001", "price": "9.00", "quantity": 1, "tax_rate": "0.05"}]),
             django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.team) == ("missing_tax_mapping", "finance")
    assert "Tax rate 5% (VAT) in GB" in exc.message and "Mappings → Tax codes" in exc.message
    assert order_setup.erp.sales_orders == []


def test_a_depot_the_erp_does_not_have_is_an_ops_exception(client, order_setup, shopify_connection, django_capture_on_commit_callbacks):
    shopify_connection.depotmapping_set.update(depot_code="CHD")
    _deliver(client, shopify_order(number=1050), django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.team) == ("invalid_depot", "ops")
    assert exc.message.startswith("Depot CHD mapped for order #1050 is not an ERP depot")


def test_a_customer_matching_two_erp_accounts_is_a_conflict(client, order_setup, django_capture_on_commit_callbacks):
    order_setup.erp.customers_add(email="zoe@example.com", name="Zoe A")
    order_setup.erp.customers_add(email="zoe@example.com", name="Zoe B")
    _deliver(client, shopify_order(), django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert exc.type_code == "customer_conflict"
    assert len(exc.context["erp_accounts"]) == 2
    assert order_setup.erp.sales_orders == []


def test_an_existing_customer_is_matched_by_email_not_created_again(client, order_setup, django_capture_on_commit_callbacks):
    existing = order_setup.erp.customers_add(email="zoe@example.com", name="Zoë Müller")
    _deliver(client, shopify_order(), django_capture_on_commit_callbacks)
    _deliver(client, shopify_order(number=1044), django_capture_on_commit_callbacks)
    assert len(order_setup.erp.customers) == 1
    assert {o["customer_id"] for o in order_setup.erp.sales_orders} == {existing["id"]}


def test_an_erp_outage_after_retries_is_an_exception_and_retry_posts_when_it_is_back(
    client, order_setup, django_capture_on_commit_callbacks
):
    order_setup.erp.outage = True
    _deliver(client, shopify_order(), django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.team, exc.severity) == ("erp_unavailable", "ops", "critical")
    order_setup.erp.outage = False
    assert exception_retry(record=exc) is True
    assert len(order_setup.erp.sales_orders) == 1


def test_erp_429s_and_record_locks_are_retried_without_any_exception(client, order_setup, django_capture_on_commit_callbacks,
                                                                    settings):
    import random

    from integrations.sandbox.server import RateLimiter

    # Within the client's attempts (here 10): an unlucky run of six locks and 429s in a row on one
    # write is what the attempts limit is for, and would be an owned exception, not what this shows.
    settings.ERP = {**settings.ERP, "max_attempts": 10}
    order_setup.erp.random = random.Random(2026)
    order_setup.erp.rate_limiter = RateLimiter(3)
    order_setup.erp.lock_probability = 0.3
    for n in range(3):
        _deliver(client, shopify_order(number=2000 + n), django_capture_on_commit_callbacks)
    assert len(order_setup.erp.sales_orders) == 3
    assert ExceptionRecord.objects.count() == 0
    assert order_setup.erp.rate_limited_count > 0


def test_a_malformed_order_payload_is_an_owned_exception_not_a_crash(client, order_setup, django_capture_on_commit_callbacks):
    payload = shopify_order()
    del payload["line_items"][0]["quantity"]
    _deliver(client, payload, django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert exc.type_code == "malformed_payload" and "quantity" in exc.message
    assert InboundEvent.objects.get().status == InboundEvent.Status.FAILED
    assert order_setup.erp.sales_orders == []


def test_the_order_pages_show_the_order_its_timeline_and_raw_payload(client, order_setup, ops_user, django_capture_on_commit_callbacks):
    payload = shopify_order(number=1077)
    _deliver(client, payload, django_capture_on_commit_callbacks)
    client.force_login(ops_user)
    listing = client.get("/orders/?q=1077")
    assert listing.status_code == 200 and b"#1077" in listing.content
    link = OrderLink.objects.get()
    detail = client.get(f"/orders/{link.pk}/").content.decode()
    assert link.erp_order_id in detail and "Posted" in detail
    assert "TEE-BLK-M" in detail  # raw payload shown
    assert "sandbox-shopify-webhook-secret" not in detail and "Hmac" not in detail
    fragment = client.get("/orders/?state=posted", headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content and b"#1077" in fragment.content


def test_a_posted_sale_queues_a_stock_push_for_its_items(client, order_setup, settings, monkeypatch, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    from integrations.models import InventorySyncRun

    settings.INVENTORY_PUSH_ON_ORDER = True
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)  # queue, do not run: the push is inventory's test
    event_id = post_shopify_webhook(client, shopify_order(lines=[{"sku": "MUG-001", "price": "9.00", "quantity": 2}])).json()["event"]
    with django_capture_on_commit_callbacks(execute=True):
        assert order_flow.inbound_event_process(event_id=event_id) == "posted"
    run = InventorySyncRun.objects.get()
    assert (run.kind, run.trigger, run.item_codes, run.status) == ("order", "order", ["MUG-001"], "pending")
    assert any(q.task["func"] == "integrations.tasks.inventory_push_items" for q in OrmQ.objects.all())


def test_with_prima_as_the_erp_a_paid_order_becomes_one_prima_sales_order(
    client, order_setup, settings, django_capture_on_commit_callbacks
):
    settings.ERP = {**settings.ERP, "kind": "prima"}
    payload = shopify_order(number=1100, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1}],
                            shipping=[{"price": "4.99"}])
    for _ in range(2):
        _deliver(client, payload, django_capture_on_commit_callbacks, webhook_id="wh-prima")
    [sales_order] = order_setup.prima.sales_orders
    assert order_setup.erp.sales_orders == []
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and link.erp_order_id == sales_order["order_number"]
    assert sales_order["external_reference"] == f"shopify:{payload['id']}"
    assert [l["item_code"] for l in sales_order["lines"]] == ["TEE-BLK-M", "SHIPPING"]
    [account] = order_setup.prima.customers
    assert account["name"] == "Zoë Müller"  # survived the ISO-8859-1 XML round trip


def test_an_erp_validation_error_becomes_an_erp_rejected_exception_with_the_erps_words(
    client, order_setup, django_capture_on_commit_callbacks
):
    _deliver(client, shopify_order(number=1200), django_capture_on_commit_callbacks)  # warms the depot list
    with order_setup.erp.lock:
        del order_setup.erp.depots["MAIN"]  # retired in the ERP after Ledgerline last looked
    _deliver(client, shopify_order(number=1201), django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.team) == ("erp_rejected", "ops")
    assert exc.message.startswith("The ERP rejected order #1201:") and "MAIN" in exc.message
    assert len(order_setup.erp.sales_orders) == 1


def test_one_sku_on_two_storefront_products_is_a_duplicate_sku_exception(client, order_setup, django_capture_on_commit_callbacks):
    payload = shopify_order(number=1300, lines=[
        {"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "product_id": 111},
        {"sku": "TEE-BLK-M", "price": "22.00", "quantity": 1, "product_id": 222},
    ])
    _deliver(client, payload, django_capture_on_commit_callbacks)
    exc = ExceptionRecord.objects.get()
    assert (exc.type_code, exc.sku) == ("duplicate_sku", "TEE-BLK-M")
    assert "belongs to 2 storefront products (111, 222)" in exc.message
    assert order_setup.erp.sales_orders == []


def test_retry_posting_from_the_order_page(client, order_setup, shopify_connection, ops_user, outsider,
                                           django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1400, lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}]),
             django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    url = f"/orders/{link.pk}/retry/"
    assert client.post(url).status_code == 302  # signed out: to the login page
    client.force_login(outsider)
    assert client.post(url).status_code == 403
    client.force_login(ops_user)
    assert client.get(url).status_code == 405
    page = client.get(f"/orders/{link.pk}/").content.decode()
    assert "Retry posting" in page
    SkuMapping.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="TEE-BLK-M")
    erp_requests = order_setup.erp.requests_count
    with django_capture_on_commit_callbacks(execute=True):  # the queued task runs at commit (Conf.SYNC)
        response = client.post(url, headers={"HX-Request": "true"})
        assert order_setup.erp.requests_count == erp_requests  # answered before any ERP call
    assert response.status_code == 200 and response["HX-Trigger"] == "exceptionsChanged"
    fragment = response.content.decode()
    assert "<html" not in fragment and "Retry queued" in fragment
    assert len(order_setup.erp.sales_orders) == 1
    assert ExceptionRecord.objects.get().status == "resolved"


@pytest.mark.parametrize("erp_kind", ["rest", "prima"])
def test_tax_inclusive_prices_reach_the_erp_marked_as_gross(
    client, order_setup, settings, erp_kind, django_capture_on_commit_callbacks
):
    settings.ERP = {**settings.ERP, "kind": erp_kind}
    # a UK shop: 24.00 is the price the buyer saw, 4.00 VAT inside it
    payload = shopify_order(number=1200, taxes_included=True,
                            lines=[{"sku": "TEE-BLK-M", "price": "24.00", "quantity": 1, "tax_price": "4.00"}])
    _deliver(client, payload, django_capture_on_commit_callbacks)
    [sales_order] = (order_setup.erp if erp_kind == "rest" else order_setup.prima).sales_orders
    assert sales_order["prices_include_tax"] is True
    item = next(line for line in sales_order["lines"] if line["item_code"] == "TEE-BLK-M")
    assert (item["line_total"], item["tax_amount"]) == ("24.00", "4.00")
    assert sales_order["total"] == "24.00"  # not 28.00: the tax is not added on top
