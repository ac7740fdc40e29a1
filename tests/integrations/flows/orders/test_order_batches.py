"""Sales orders in batches where the ERP takes several per request: one request for many orders,
each answer applied to its own order, and a crash between the ERP's answer and our bookkeeping
still leaves one Sales Order per order after the replay."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from integrations.connectors import get_erp
from integrations.flows import orders as order_flow
from integrations.flows.orders import batches
from integrations.flows.orders.common import erp_facts_key
from integrations.models import CustomerLink, InboundEvent, OrderEvent, OrderLink, OutboundWrite, ReadySalesOrder
from tests.payloads import deliver_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def batching(order_setup, monkeypatch):
    """Batches of up to 100, and another worker holding the host's wait (as in a running cluster),
    so the tasks only queue their orders and the test sends the batch itself."""
    from integrations.flows.orders import posting

    monkeypatch.setattr(posting, "batch_size", lambda erp: 100)
    # This process's background sender would race the test for the host's wait: the test is that worker.
    monkeypatch.setattr(batches._sender, "wake", lambda *args, **kwargs: None)
    endpoint = erp_facts_key(get_erp())
    waiter = batches._Waiter(endpoint)
    assert waiter.acquire()

    def send(erp=None):
        """That worker's wait is over: the batch goes out."""
        waiter.release()
        try:
            return batches.sales_orders_flush(erp or get_erp(), endpoint=endpoint, size=100, wait=0)
        finally:
            assert waiter.acquire()

    yield send
    waiter.release()


def _kinds_during(erp, action) -> dict:
    before = dict(erp.requests_by_kind)
    action()
    return {k: v - before.get(k, 0) for k, v in erp.requests_by_kind.items() if v != before.get(k, 0)}


def _queue_orders(client, capture, numbers, customer_id=7001, email="amy@example.com") -> list[dict]:
    payloads = [shopify_order(number=number, customer_id=customer_id, email=email) for number in numbers]
    for payload in payloads:
        deliver_shopify_webhook(client, payload, capture)
    return payloads


def test_ready_orders_go_to_the_erp_in_one_batch_request_each_posted_once(
    client, order_setup, batching, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    _queue_orders(client, django_capture_on_commit_callbacks, [3001, 3002, 3003])
    assert erp.sales_orders == []  # waiting for the batch; each attempt row is saved already
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTING}
    assert OutboundWrite.objects.filter(action="create_sales_order", status="started").count() == 3

    kinds = _kinds_during(erp, batching)
    assert kinds == {"batch": 1}
    assert sorted(o["external_reference"] for o in erp.sales_orders) == sorted(
        [link.external_reference for link in OrderLink.objects.all()])
    for link in OrderLink.objects.all():
        assert link.state == OrderLink.State.POSTED and link.erp_order_id
        assert link.timeline.filter(kind=OrderEvent.Kind.POSTED).count() == 1
    assert OutboundWrite.objects.filter(action="create_sales_order", status="succeeded").count() == 3
    assert not ReadySalesOrder.objects.exists()


def test_one_document_the_erp_refuses_fails_only_its_own_order(
    client, order_setup, batching, shopify_connection, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    amy = erp.customers_add(email="amy@example.com", name="Amy", external_reference="crm:amy")
    CustomerLink.objects.create(connection=shopify_connection, key="id:7001", erp_customer_id=amy["id"])
    _queue_orders(client, django_capture_on_commit_callbacks, [3011])  # posts under her remembered account
    erp._customers.clear()  # the ERP lost the account the first order was checked against
    deliver_shopify_webhook(client, shopify_order(number=3012, customer_id=7002, email="ben@example.com"),
                            django_capture_on_commit_callbacks)
    batching()
    refused, booked = OrderLink.objects.get(order_number="#3011"), OrderLink.objects.get(order_number="#3012")
    assert booked.state == OrderLink.State.POSTED
    assert refused.state == OrderLink.State.FAILED
    record = ExceptionRecord.objects.get(order=refused)
    assert record.type_code == "erp_rejected" and "customer" in record.message.lower()
    assert [o["external_reference"] for o in erp.sales_orders] == [booked.external_reference]


def test_an_erp_outage_during_a_batch_reposts_every_order_in_it_later_once_each(
    client, order_setup, batching, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    _queue_orders(client, django_capture_on_commit_callbacks, [3021, 3022])
    erp.outage = True
    client_erp = get_erp()
    client_erp.max_attempts, client_erp.sleep = 1, lambda s: None
    batching(client_erp)
    links = list(OrderLink.objects.all())
    assert all(link.state == OrderLink.State.FAILED and link.next_retry_at for link in links)
    assert set(ExceptionRecord.objects.values_list("type_code", flat=True)) == {"erp_unavailable"}

    erp.outage = False
    for link in links:
        order_flow.order_post_to_erp(order_id=link.pk)  # the sweep's re-post: asks the ERP first
    batching()
    assert len(erp.sales_orders) == 2
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTED}
    assert not ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).exists()


def test_a_sender_killed_after_the_erp_booked_its_batch_leaves_one_sales_order_each_after_replay(
    client, order_setup, batching, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.flows.orders import batch_answers

    erp = order_setup.erp
    payloads = _queue_orders(client, django_capture_on_commit_callbacks, [3031, 3032, 3033])

    def die(*args, **kwargs):
        raise SystemExit("worker killed after the ERP booked the batch")

    real_record = batch_answers.record_batch_posted  # the batch's answers are recorded together
    monkeypatch.setattr(batch_answers, "record_batch_posted", die)
    with pytest.raises(SystemExit):
        batching()
    monkeypatch.setattr(batch_answers, "record_batch_posted", real_record)
    assert len(erp.sales_orders) == 3
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTING}

    # The tasks are handed out again after the claim lease, and Shopify redelivers a webhook too.
    expired = timezone.now() - order_flow.CLAIM_LEASE - timedelta(seconds=1)
    OrderLink.objects.update(posting_started_at=expired)
    InboundEvent.objects.update(claimed_at=expired)
    for event in InboundEvent.objects.all():
        order_flow.inbound_event_process(event_id=event.pk)
    deliver_shopify_webhook(client, payloads[0], django_capture_on_commit_callbacks, webhook_id="redelivered")
    batching()

    assert len(erp.sales_orders) == 3  # 0 duplicates
    assert sorted(o["external_reference"] for o in erp.sales_orders) == sorted(
        [link.external_reference for link in OrderLink.objects.all()])  # 0 lost
    for link in OrderLink.objects.all():
        assert link.state == OrderLink.State.POSTED
        assert link.erp_order_id in {o["id"] for o in erp.sales_orders}
        assert link.timeline.filter(kind=OrderEvent.Kind.LINKED_EXISTING).exists()
    assert not ReadySalesOrder.objects.exists()
    # The buyer they carried, new to the ERP, has one account, opened once, and every order is under it.
    [account] = erp.customers
    assert set(OrderLink.objects.values_list("erp_customer_id", flat=True)) == {account["id"]}


def test_prima_takes_one_sales_order_per_request(order_setup, monkeypatch, settings):
    from django_q.conf import Conf

    from integrations.connectors.prima import PrimaClient

    settings.ORDERS = {**settings.ORDERS, "batch_max": 100}
    monkeypatch.setattr(Conf, "SYNC", False)  # as in a running cluster
    assert batches.batch_size(get_erp()) == 100  # the REST ERP has a batch endpoint
    assert batches.batch_size(PrimaClient.from_settings()) == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_queues_its_order_and_the_background_sender_posts_the_batch_within_the_wait(
    client, order_setup, monkeypatch, settings, django_capture_on_commit_callbacks
):
    import time

    from integrations.flows.orders import posting

    monkeypatch.setattr(posting, "batch_size", lambda erp: 100)
    settings.ORDERS = {**settings.ORDERS, "batch_wait": 0.3}
    erp = order_setup.erp
    _queue_orders(client, django_capture_on_commit_callbacks, [3041, 3042, 3043])  # each task returns at once
    deadline = time.time() + 10
    # the sender applies each answer, then clears the batch's queue rows: wait for both
    while time.time() < deadline and (
        OrderLink.objects.exclude(state=OrderLink.State.POSTED).exists() or ReadySalesOrder.objects.exists()
    ):
        time.sleep(0.1)
    assert set(OrderLink.objects.values_list("state", flat=True)) == {OrderLink.State.POSTED}
    assert len(erp.sales_orders) == 3
    assert erp.requests_by_kind.get("batch", 0) >= 1 and not erp.requests_by_kind.get("create")
    assert not ReadySalesOrder.objects.exists()


def test_new_buyers_go_with_their_documents_and_cost_no_request_of_their_own(
    client, order_setup, batching, shopify_connection, django_capture_on_commit_callbacks
):
    erp, capture = order_setup.erp, django_capture_on_commit_callbacks
    _queue_orders(client, capture, [3101, 3102])  # Amy twice, before the ERP knows her
    _queue_orders(client, capture, [3103], customer_id=7002, email="ben@example.com")
    assert _kinds_during(erp, batching) == {"batch": 1}  # no customer request at all
    assert len(erp.customers) == 2  # Amy's second document matched the account her first opened
    booked = {o["external_reference"]: o["customer_id"] for o in erp.sales_orders}
    for link in OrderLink.objects.all():
        assert link.state == OrderLink.State.POSTED and link.erp_customer_id == booked[link.external_reference]
    amy = OrderLink.objects.get(order_number="#3101")
    assert amy.erp_customer_id == OrderLink.objects.get(order_number="#3102").erp_customer_id
    assert dict(CustomerLink.objects.values_list("key", "erp_customer_id")) == {
        "id:7001": amy.erp_customer_id, "email:amy@example.com": amy.erp_customer_id,
        "id:7002": booked[OrderLink.objects.get(order_number="#3103").external_reference],
        "email:ben@example.com": booked[OrderLink.objects.get(order_number="#3103").external_reference]}
    # As the order's page lists its timeline (by time, then entry): the account, then the posting.
    assert [e.kind for e in amy.timeline.all()][-2:] == [OrderEvent.Kind.CUSTOMER_CREATED, OrderEvent.Kind.POSTED]
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.CUSTOMER_CREATED).count() == 2

    _queue_orders(client, capture, [3104])  # Amy again: her remembered account goes with the document
    assert ReadySalesOrder.objects.get().request["customer_id"] == amy.erp_customer_id
    assert ReadySalesOrder.objects.get().request["new_customer"] is None
    assert _kinds_during(erp, batching) == {"batch": 1} and len(erp.customers) == 2


def test_a_new_buyer_the_erp_knows_by_email_is_matched_in_the_batch(
    client, order_setup, batching, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    cara = erp.customers_add(email="cara@example.com", name="Cara", external_reference="crm:9")
    _queue_orders(client, django_capture_on_commit_callbacks, [3111], customer_id=7004, email="Cara@Example.com")
    assert _kinds_during(erp, batching) == {"batch": 1}
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and link.erp_customer_id == cara["id"] and len(erp.customers) == 1
    assert link.timeline.get(kind=OrderEvent.Kind.CUSTOMER_MATCHED).message == (
        f"Matched ERP customer {cara['id']} by e-mail cara@example.com")


def test_a_new_buyer_matching_several_accounts_fails_only_that_order_as_a_customer_conflict(
    client, order_setup, batching, django_capture_on_commit_callbacks
):
    erp, capture = order_setup.erp, django_capture_on_commit_callbacks
    twins = [erp.customers_add(email="dana@example.com", name=f"Dana {n}", external_reference=f"crm:{n}")
             for n in (1, 2)]
    _queue_orders(client, capture, [3121], customer_id=7005, email="dana@example.com")
    _queue_orders(client, capture, [3122], customer_id=7002, email="ben@example.com")
    batching()
    dana, ben = OrderLink.objects.get(order_number="#3121"), OrderLink.objects.get(order_number="#3122")
    assert ben.state == OrderLink.State.POSTED
    assert dana.state == OrderLink.State.FAILED and not dana.erp_order_id
    record = ExceptionRecord.objects.get(order=dana)
    assert record.type_code == "customer_conflict"
    assert all(twin["id"] in record.message for twin in twins)
    assert len(erp.customers) == 3  # Ben's opened, none for Dana
    assert OutboundWrite.objects.get(order=dana, action="create_sales_order").status == "failed"
    assert not CustomerLink.objects.filter(key__contains="dana").exists()
