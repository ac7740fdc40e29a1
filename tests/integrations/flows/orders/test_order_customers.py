"""Customers: repeat buyers reuse their ERP account without a search, guests follow the connection's
policy and are never merged with strangers, and a conflict lists every real candidate."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import CustomerLink, OrderLink, OutboundWrite
from tests.payloads import deliver_shopify_webhook, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


_deliver = deliver_shopify_webhook


def _customer_requests(erp) -> list:
    return [(m, p) for m, p in erp.requests_seen if "/customers" in p]


def test_a_repeat_customer_reuses_the_erp_account_without_a_second_search(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    _deliver(client, shopify_order(number=1501, customer_id=8101, email="ann@example.com"), django_capture_on_commit_callbacks)
    first = _customer_requests(erp)
    assert [m for m, _ in first] == ["POST"]  # one match-or-create (by reference, then e-mail, else created)
    _deliver(client, shopify_order(number=1502, customer_id=8101, email="ann@example.com"), django_capture_on_commit_callbacks)
    assert _customer_requests(erp) == first  # not searched again
    [customer] = erp.customers
    assert {o["customer_id"] for o in erp.sales_orders} == {customer["id"]}
    assert set(CustomerLink.objects.values_list("key", flat=True)) == {"id:8101", "email:ann@example.com"}


def test_a_new_buyers_account_is_in_the_write_log_and_remembered_together(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    _deliver(client, shopify_order(number=1511, customer_id=8111, email="cy@example.com"), django_capture_on_commit_callbacks)
    [customer] = erp.customers
    [write] = OutboundWrite.objects.filter(action="create_customer")
    assert (write.status, write.response_id) == (OutboundWrite.Status.SUCCEEDED, customer["id"])
    assert write.finished_at is not None and write.external_reference == "shopify:customer:8111"
    assert dict(CustomerLink.objects.values_list("key", "erp_customer_id")) == {
        "id:8111": customer["id"], "email:cy@example.com": customer["id"]}


def test_a_failure_recording_the_new_account_leaves_the_write_started_and_the_retry_finds_it(
    client, order_setup, django_capture_on_commit_callbacks, monkeypatch
):
    """The ERP created the account but the commit that records it failed: nothing half-recorded (the
    write still "started", no key remembered), the order owned as failed; its retry asks the ERP's
    match-or-create again, which finds the same account by reference instead of creating a second."""
    from integrations.flows.orders import customers

    erp = order_setup.erp
    real = customers._remember_customer
    def broken(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("database went away")
    monkeypatch.setattr(customers, "_remember_customer", broken)
    _deliver(client, shopify_order(number=1512, customer_id=8112, email="di@example.com"), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.FAILED
    [write] = OutboundWrite.objects.filter(action="create_customer")
    assert write.status == OutboundWrite.Status.STARTED
    assert not CustomerLink.objects.exists()
    assert len(erp.customers) == 1

    monkeypatch.setattr(customers, "_remember_customer", real)
    from integrations.flows.orders.posting import order_post_to_erp
    assert order_post_to_erp(order_id=link.pk) == "posted"  # the sweep's retry
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    assert len(erp.customers) == 1  # matched again by its reference, not created twice
    assert set(CustomerLink.objects.values_list("erp_customer_id", flat=True)) == {erp.customers[0]["id"]}


def test_the_same_email_from_another_storefront_customer_matches_the_one_erp_account(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    erp.customers_add(email="bob@example.com", name="Bob", external_reference="crm:42")
    _deliver(client, shopify_order(number=1503, customer_id=8102, email="Bob@Example.com"), django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    assert len(erp.customers) == 1
    assert not ExceptionRecord.objects.exists()


def test_a_customer_conflict_names_every_candidate(client, order_setup, django_capture_on_commit_callbacks):
    erp = order_setup.erp
    a = erp.customers_add(email="cat@example.com", name="Cat A")
    b = erp.customers_add(email="cat@example.com", name="Cat B")
    _deliver(client, shopify_order(number=1504, customer_id=8103, email="cat@example.com"), django_capture_on_commit_callbacks)
    [record] = ExceptionRecord.objects.filter(type_code="customer_conflict")
    assert record.title == "Customer cat@example.com matches 2 ERP accounts"
    assert a["id"] in record.message and b["id"] in record.message
    assert sorted(record.context["erp_accounts"]) == sorted([a["id"], b["id"]])
    assert erp.sales_orders == []


def test_guests_without_email_post_under_the_connections_guest_account_per_currency(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    for number, currency in ((1505, "GBP"), (1506, "GBP"), (1507, "EUR")):
        payload = shopify_order(number=number, email="", currency=currency)
        payload["customer"] = None
        _deliver(client, payload, django_capture_on_commit_callbacks)
    assert OrderLink.objects.filter(state=OrderLink.State.POSTED).count() == 3
    guests = {c["external_reference"]: c for c in erp.customers}
    assert set(guests) == {"shopify:guest:GBP", "shopify:guest:EUR"}
    assert all(not c["email"] for c in guests.values())
    by_currency = {o["currency"]: o["customer_id"] for o in erp.sales_orders}
    assert by_currency == {"GBP": guests["shopify:guest:GBP"]["id"], "EUR": guests["shopify:guest:EUR"]["id"]}


def test_a_configured_guest_account_is_used_as_it_is(client, order_setup, shopify_connection,
                                                      django_capture_on_commit_callbacks):
    cash = order_setup.erp.customers_add(email="", name="Cash sales", external_reference="erp:cash")
    shopify_connection.settings = {"guest_accounts": {"*": cash["id"]}}
    shopify_connection.save()
    payload = shopify_order(number=1508, email="")
    payload["customer"] = None
    _deliver(client, payload, django_capture_on_commit_callbacks)
    assert order_setup.erp.sales_orders[0]["customer_id"] == cash["id"]
    assert len(order_setup.erp.customers) == 1


def test_the_storefront_customer_policy_keys_guests_by_phone_and_never_merges_strangers(
    client, order_setup, shopify_connection, django_capture_on_commit_callbacks
):
    shopify_connection.settings = {"guest_policy": "storefront_customer"}
    shopify_connection.save()
    for number, phone in ((1509, "+447700900001"), (1510, "+447700900002"), (1511, "+447700900001")):
        payload = shopify_order(number=number, email="", phone=phone)
        payload["customer"] = None
        _deliver(client, payload, django_capture_on_commit_callbacks)
    erp = order_setup.erp
    assert sorted(c["phone"] for c in erp.customers) == ["+447700900001", "+447700900002"]
    customers = [o["customer_id"] for o in erp.sales_orders]
    assert customers[0] == customers[2] != customers[1]
