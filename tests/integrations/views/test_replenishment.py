"""The replenishment review screens: who may use them, filters, inline quantity edits, approve /
reject / bulk approve, and the planner's view of a SKU beside the stored ERP and storefront stock."""
import pytest
from django.urls import reverse

from integrations.models import InventoryLevel, PlannerVariant, Recommendation, RecommendationLine
from tests.factories import ConnectionFactory

S = Recommendation.Status


@pytest.fixture
def planner_connection(db):
    return ConnectionFactory(code="ip", kind="inventory_planner", name="Inventory Planner",
                             credentials={"api_key": "k"}, settings={"account_id": "a1"})


def _recommendation(connection, *, planner_id="po1", vendor="Acme Textiles", warehouse="MAIN", urgency="high",
                    lines=(("TEE-BLK-S", 40),)):
    rec = Recommendation.objects.create(connection=connection, planner_id=planner_id, planner_reference=f"PO-{planner_id}",
                                        vendor=vendor, warehouse=warehouse, depot=warehouse, urgency=urgency,
                                        urgency_rank={"critical": 0, "high": 1, "medium": 2, "low": 3}[urgency])
    for n, (sku, quantity) in enumerate(lines):
        RecommendationLine.objects.create(recommendation=rec, planner_item_id=str(n), sku=sku, erp_item_code=sku,
                                          quantity_recommended=quantity, quantity_approved=quantity, oos=5,
                                          lead_time=21, review_period=30)
    return rec


@pytest.fixture
def rec(planner_connection):
    return _recommendation(planner_connection)


def test_it_lists_what_is_to_review(client, ops_user, rec):
    client.force_login(ops_user)
    response = client.get(reverse("replenishment"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("<h1") == 1 and "PO-po1" in body and "Acme Textiles" in body and 'class="table-wrap"' in body


def test_it_filters_by_vendor_warehouse_and_urgency(client, ops_user, planner_connection):
    _recommendation(planner_connection, planner_id="a", vendor="Acme Textiles", warehouse="MAIN", urgency="high")
    _recommendation(planner_connection, planner_id="b", vendor="Enamel & Co", warehouse="NORTH", urgency="low")
    client.force_login(ops_user)
    assert "PO-b" not in client.get(reverse("replenishment"), {"vendor": "Acme Textiles"}).content.decode()
    assert "PO-a" not in client.get(reverse("replenishment"), {"warehouse": "NORTH"}).content.decode()
    body = client.get(reverse("replenishment"), {"urgency": "low"}).content.decode()
    assert "PO-b" in body and "PO-a" not in body


def test_an_htmx_filter_gets_the_list_fragment_only(client, ops_user, rec):
    client.force_login(ops_user)
    response = client.get(reverse("replenishment"), {"show": "review"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="recommendation-list"' in body and "<h1" not in body
    assert "HX-Request" in response["Vary"]


def test_it_is_forbidden_to_other_teams(client, finance_user, rec):
    client.force_login(finance_user)
    assert client.get(reverse("replenishment")).status_code == 403
    assert client.post(reverse("replenishment-approve", args=[rec.pk])).status_code == 403


def test_it_redirects_to_the_login_page_when_signed_out(client, rec):
    response = client.get(reverse("replenishment"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_actions_reject_get(client, ops_user, rec):
    client.force_login(ops_user)
    line = rec.lines.get()
    for url in (reverse("replenishment-approve", args=[rec.pk]), reverse("replenishment-reject", args=[rec.pk]),
                reverse("replenishment-bulk-approve"), reverse("replenishment-line-quantity", args=[line.pk])):
        assert client.get(url).status_code == 405


def test_a_quantity_edit_saves_a_whole_number(client, ops_user, rec):
    client.force_login(ops_user)
    line = rec.lines.get()
    response = client.post(reverse("replenishment-line-quantity", args=[line.pk]), {"quantity": "25"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'value="25"' in response.content.decode()
    line.refresh_from_db()
    assert line.quantity_approved == 25


@pytest.mark.parametrize("bad", ["-3", "2.5", "ten", ""])
def test_a_quantity_that_is_not_a_whole_non_negative_number_is_refused(client, ops_user, rec, bad):
    client.force_login(ops_user)
    line = rec.lines.get()
    url = reverse("replenishment-line-quantity", args=[line.pk])
    htmx = client.post(url, {"quantity": bad}, HTTP_HX_REQUEST="true")
    assert 'role="alert"' in htmx.content.decode()
    assert client.post(url, {"quantity": bad}).status_code == 400
    line.refresh_from_db()
    assert line.quantity_approved == 40


def test_approve_queues_the_purchase_order_and_a_second_click_is_told(client, ops_user, rec, monkeypatch):
    queued = []
    monkeypatch.setattr("integrations.flows.replenishment.approve._queue_place", queued.append)
    client.force_login(ops_user)
    url = reverse("replenishment-approve", args=[rec.pk])
    first = client.post(url, HTTP_HX_REQUEST="true")
    assert first.status_code == 200 and first["HX-Trigger"] == "replenishmentChanged"
    second = client.post(url, HTTP_HX_REQUEST="true")
    assert "already" in second.content.decode()
    assert client.post(url).status_code == 409
    rec.refresh_from_db()
    assert rec.status == S.APPROVED and rec.decided_by == ops_user


def test_reject_needs_a_reason(client, ops_user, rec):
    client.force_login(ops_user)
    url = reverse("replenishment-reject", args=[rec.pk])
    assert client.post(url, {"reason": " "}).status_code == 400
    response = client.post(url, {"reason": "Vendor on holiday"}, HTTP_HX_REQUEST="true")
    assert "Vendor on holiday" in response.content.decode()
    rec.refresh_from_db()
    assert (rec.status, rec.reject_reason) == (S.REJECTED, "Vendor on holiday")


def test_bulk_approve_approves_the_ticked_ones(client, ops_user, planner_connection, monkeypatch):
    monkeypatch.setattr("integrations.flows.replenishment.approve._queue_place", lambda pk: None)
    a = _recommendation(planner_connection, planner_id="a")
    b = _recommendation(planner_connection, planner_id="b")
    _recommendation(planner_connection, planner_id="c")
    client.force_login(ops_user)
    response = client.post(reverse("replenishment-bulk-approve"), {"ids": [a.pk, b.pk]}, HTTP_HX_REQUEST="true")
    assert "2 approved." in response.content.decode()
    assert dict(Recommendation.objects.values_list("planner_id", "status")) == {
        "a": S.APPROVED, "b": S.APPROVED, "c": S.PENDING}
    assert client.post(reverse("replenishment-bulk-approve"), {}).status_code == 400


def test_an_approved_one_shows_its_erp_number_and_receipt_progress(client, ops_user, rec):
    Recommendation.objects.filter(pk=rec.pk).update(status=S.PARTLY_RECEIVED, erp_po_id="PO-000007")
    rec.lines.update(quantity_received=10)
    client.force_login(ops_user)
    body = client.get(reverse("replenishment"), {"show": "ordered"}).content.decode()
    assert "PO-000007" in body and "received 10 of 40" in body


def test_the_sku_page_shows_the_planner_beside_the_erp_and_the_storefront(client, ops_user, rec, planner_connection):
    shop = ConnectionFactory(code="shopify", kind="shopify", name="Shopify store")
    PlannerVariant.objects.create(connection=planner_connection, variant_id="v1", sku="TEE-BLK-S", warehouse="MAIN",
                                  lead_time=21, review_period=30, replenishment=40, oos=5)
    InventoryLevel.objects.create(connection=shop, storefront_sku="TEE-BLK-S", storefront_location="gid://shopify/Location/1",
                                  erp_item_code="TEE-BLK-S", erp_warehouse="MAIN", erp_ats=17, storefront_value=15)
    client.force_login(ops_user)
    body = client.get(reverse("replenishment-sku", args=["TEE-BLK-S"])).content.decode()
    assert "21 days" in body and "30 days" in body and ">17<" in body and ">15<" in body
    assert client.get(reverse("replenishment-sku", args=["NOPE-1"])).status_code == 404
