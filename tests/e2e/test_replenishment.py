"""Ops approve a replenishment with an edited quantity in real Chromium (at phone width) and see the
ERP purchase order number; the ERP holds one order with the edited quantity."""
import re

from playwright.sync_api import expect

from integrations.flows.replenishment import recommendations_pull
from integrations.models import Recommendation
from tests.factories import ConnectionFactory


def test_ops_approves_a_replenishment_with_an_edited_quantity(transactional_db, sandbox, live_server, page, sign_in,
                                                              ops_user, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the placement runs as soon as the approval commits
    for code in ("TEE-BLK-S", "TEE-BLK-M"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    planner = sandbox.server.apps["/inventory-planner"]
    planner.add_variant("TEE-BLK-M", warehouse="MAIN", lead_time=21, review_period=30, replenishment=60, oos=4,
                        vendor="Acme Textiles", cost_price="4.20")
    draft = planner.add_purchase_order(vendor="Acme Textiles", warehouse="MAIN", items=[
        {"sku": "TEE-BLK-S", "replenishment": 40, "cost": "4.20"}, {"sku": "TEE-BLK-M", "replenishment": 60, "cost": "4.20"}])
    connection = ConnectionFactory(code="ip", kind="inventory_planner", name="Inventory Planner",
                                   base_url=f"{sandbox.url}/inventory-planner/api/v1",
                                   credentials={"api_key": "sandbox-ip-key"}, settings={"account_id": "a1000"})
    recommendations_pull(connection=connection)
    rec = Recommendation.objects.get()
    line = rec.lines.get(sku="TEE-BLK-M")

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(ops_user)
    page.goto("/replenishment/")
    card = page.locator(f"#recommendation-{rec.pk}")
    expect(card).to_contain_text("Sells out before delivery")
    row = card.locator(f"#line-{line.pk}")
    field = row.get_by_label("Quantity to order of TEE-BLK-M")
    field.fill("4.5")
    row.get_by_role("button", name="Save").click()
    assert field.evaluate("el => el.validity.valid") is False  # the browser refuses it before asking (the server would too)
    line.refresh_from_db()
    assert line.quantity_approved == 60
    page.locator(f"#line-{line.pk}").get_by_label("Quantity to order of TEE-BLK-M").fill("45")
    page.locator(f"#line-{line.pk}").get_by_role("button", name="Save").click()
    expect(page.locator(f"#recommendation-{rec.pk}")).to_contain_text("TEE-BLK-M: 45 to order.")

    page.locator(f"#recommendation-{rec.pk}").get_by_role("button", name="Approve").click()
    card = page.locator(f"#recommendation-{rec.pk}")
    expect(card.locator(".erp-po")).to_have_text(re.compile(r"PO-\d+"))
    number = card.locator(".erp-po").inner_text()
    expect(card).to_contain_text("received 0 of 85")
    assert page.url.endswith("/replenishment/")  # approved in place
    [erp_po] = [po for po in sandbox.erp.purchase_orders if po["external_reference"] == rec.external_reference]
    assert erp_po["id"] == number
    assert {(l["item_code"], l["quantity"]) for l in erp_po["lines"]} == {("TEE-BLK-S", 40), ("TEE-BLK-M", 45)}
    assert planner.purchase_order(draft["id"])["extra_reference"] == number
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling of the page
