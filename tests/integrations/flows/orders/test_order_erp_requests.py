"""ERP requests per order: a first attempt creates directly (no existence check), a repeat buyer costs
the create alone, a new buyer one match-or-create more, and the ERP's items and depots are asked once,
until a mapping changes. The guarantees hold: a duplicate answer links the order, never books twice."""
import pytest

from integrations.connectors import erp_clients_clear, get_erp
from integrations.connectors.base import ErpSalesOrderLine, ErpSalesOrderRequest
from integrations.models import OrderEvent, OrderLink, OutboundWrite
from tests.factories import DepotMappingFactory
from tests.payloads import deliver_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


def _kinds_during(erp, action) -> dict:
    before = dict(erp.requests_by_kind)
    action()
    return {k: v - before.get(k, 0) for k, v in erp.requests_by_kind.items() if v != before.get(k, 0)}


def _post(client, capture, number, customer_id, email):
    deliver_shopify_webhook(client, shopify_order(number=number, customer_id=customer_id, email=email), capture)


def test_a_new_buyer_costs_two_erp_requests_and_a_repeat_buyer_one(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp, capture = order_setup.erp, django_capture_on_commit_callbacks
    first = _kinds_during(erp, lambda: _post(client, capture, 2001, 7001, "amy@example.com"))
    assert first.get("existence_check", 0) == 0  # a first attempt never asks whether the order exists
    assert first["customer_match_or_create"] == 1 and first["create"] == 1

    new_buyer = _kinds_during(erp, lambda: _post(client, capture, 2002, 7002, "ben@example.com"))
    assert new_buyer == {"customer_match_or_create": 1, "create": 1}  # items and depots are known by now

    repeat_buyer = _kinds_during(erp, lambda: _post(client, capture, 2003, 7001, "amy@example.com"))
    assert repeat_buyer == {"create": 1}
    assert OrderLink.objects.filter(state=OrderLink.State.POSTED).count() == 3
    assert len(erp.sales_orders) == 3 and len(erp.customers) == 2


def test_a_new_buyer_already_in_the_erp_by_email_is_matched_in_the_same_single_request(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    known = erp.customers_add(email="cara@example.com", name="Cara", external_reference="crm:9")
    kinds = _kinds_during(erp, lambda: _post(client, django_capture_on_commit_callbacks, 2004, 7004,
                                             "Cara@Example.com"))
    assert kinds["customer_match_or_create"] == 1 and "customer_search" not in kinds
    assert len(erp.customers) == 1 and erp.sales_orders[0]["customer_id"] == known["id"]
    link = OrderLink.objects.get()
    assert link.timeline.filter(kind=OrderEvent.Kind.CUSTOMER_MATCHED).exists()


def test_an_order_the_erp_already_holds_is_linked_from_its_duplicate_answer_not_booked_twice(
    client, order_setup, django_capture_on_commit_callbacks
):
    erp = order_setup.erp
    payload = shopify_order(number=2005)
    customer = erp.customers_add(email="other@example.com", name="Someone")
    # Booked in the ERP by someone else (another integration, a person) under the same reference.
    existing = get_erp().create_sales_order(ErpSalesOrderRequest(
        external_reference=f"shopify:{payload['id']}", customer_id=customer["id"], currency="GBP", depot="MAIN",
        order_date="2026-01-01", customer_reference="", lines=(ErpSalesOrderLine(
            item_code="MUG-001", description="Mug", quantity=1, unit_price="5.00", line_total="5.00"),),
        total="5.00"))
    deliver_shopify_webhook(client, payload, django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and link.erp_order_id == existing.id
    assert len(erp.sales_orders) == 1
    assert link.timeline.filter(kind=OrderEvent.Kind.LINKED_EXISTING).exists()
    assert OutboundWrite.objects.get(action="create_sales_order").status == OutboundWrite.Status.SUCCEEDED


@pytest.mark.parametrize("write_log", ["kept", "lost"])
def test_with_prima_a_replay_links_the_order_prima_already_holds(
    client, order_setup, settings, django_capture_on_commit_callbacks, write_log
):
    """kept: the attempt row says an earlier create was started, so Prima is asked first;
    lost: nothing says so, the create goes out and Prima's DUPLICATE_REFERENCE answer links it."""
    from integrations.flows.orders import order_post_to_erp

    settings.ERP = {**settings.ERP, "kind": "prima"}
    prima = order_setup.prima
    deliver_shopify_webhook(client, shopify_order(number=2006), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and len(prima.sales_orders) == 1
    OrderLink.objects.filter(pk=link.pk).update(state=OrderLink.State.FAILED, erp_order_id="")
    if write_log == "lost":
        OutboundWrite.objects.filter(action="create_sales_order").delete()
    assert order_post_to_erp(order_id=link.pk) == "posted"
    link.refresh_from_db()
    assert len(prima.sales_orders) == 1 and link.erp_order_id == prima.sales_orders[0]["order_number"]
    assert link.timeline.filter(kind=OrderEvent.Kind.LINKED_EXISTING).exists()


def test_a_new_depot_mapping_makes_the_next_order_read_the_erps_depots_again(
    client, order_setup, shopify_connection, django_capture_on_commit_callbacks
):
    erp, capture = order_setup.erp, django_capture_on_commit_callbacks
    _post(client, capture, 2007, 7007, "dan@example.com")
    assert _kinds_during(erp, lambda: _post(client, capture, 2008, 7007, "dan@example.com")) == {"create": 1}
    erp.add_depot("EAST")
    DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="EAST")
    kinds = _kinds_during(erp, lambda: _post(client, capture, 2009, 7007, "dan@example.com"))
    assert kinds.get("depots") == 1 and kinds["create"] == 1
    assert erp.sales_orders[-1]["depot"] == "EAST"


def test_tasks_reuse_one_erp_client_and_a_callers_own_settings_stay_its_own(order_setup, settings):
    erp_clients_clear()
    first, second = get_erp(), get_erp()
    assert first.session is second.session  # one connection pool, not one per task
    first.max_attempts = 1  # as the sweep does for its probe
    assert get_erp().max_attempts == settings.ERP.get("max_attempts", 6)
    settings.ERP = {**settings.ERP, "api_key": "rotated"}
    assert get_erp().session is not first.session  # a changed configuration builds a new client


def test_what_one_erp_told_about_its_items_is_not_assumed_of_another(
    client, order_setup, settings, django_capture_on_commit_callbacks
):
    deliver_shopify_webhook(client, shopify_order(number=2010, lines=[{"sku": "MUG-001", "price": "5.00", "quantity": 1}]),
                            django_capture_on_commit_callbacks)
    assert OrderLink.objects.get().state == OrderLink.State.POSTED  # the REST ERP has MUG-001
    order_setup.prima.add_item("MUG-001", active=False)  # Prima cannot sell it
    settings.ERP = {**settings.ERP, "kind": "prima"}
    deliver_shopify_webhook(client, shopify_order(number=2011, lines=[{"sku": "MUG-001", "price": "5.00", "quantity": 1}]),
                            django_capture_on_commit_callbacks)
    link = OrderLink.objects.get(order_number="#2011")
    assert link.state == OrderLink.State.FAILED and order_setup.prima.sales_orders == []
    assert link.exceptions.filter(type_code="unknown_sku").exists()
