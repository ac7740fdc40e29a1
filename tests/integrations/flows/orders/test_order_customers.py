"""Customers: repeat buyers reuse their ERP account without a search, guests follow the connection's
policy and are never merged with strangers, and a conflict lists every real candidate."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import CustomerLink, OrderLink
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
