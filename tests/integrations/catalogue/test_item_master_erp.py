"""ITEM_MASTER over HTTP: the REST ERP's `GET /items?updated_since=&limit=` and Prima's StockItemChanges,
read through the connectors: stable ids across a rename, scoped prices as Decimals, a cursor that
neither skips nor repeats items changed while a reader pages, and the old `/items` listing unchanged."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from integrations.connectors.base import PermanentError, supports
from integrations.connectors.catalogue import ITEM_MASTER
from integrations.connectors.erp import RestErpClient
from integrations.connectors.prima import PrimaClient

PRICES = [
    {"currency": "GBP", "amount": "19.99", "type": "list", "price_list": "UK"},
    {"currency": "GBP", "amount": "17.505", "type": "list", "min_quantity": 10, "price_list": "UK-TIERS"},
    {"currency": "EUR", "amount": "21.00", "type": "list", "country": "DE", "customer_group": "trade",
     "channel": "web-de", "valid_from": "2026-01-01T00:00:00+00:00", "valid_until": "2026-07-01T00:00:00+00:00",
     "price_list": "DE-TRADE"},
]


def _item(app, code, **fields):
    return app.item_master_put(code, **{"name": "Tee", "product_key": "TEE", "tax_code": "T1", "unit_cost": "4.20",
                                        "lead_time_days": 14, "depot": "MAIN", "attributes": {"size": "M"},
                                        "barcodes": ["5000000000001"], "prices": PRICES, **fields})


def _read_all(client, cursor="", limit=2):
    seen = []
    while True:
        page = client.items_changed_since(cursor, limit=limit)
        seen += page.items
        cursor = page.cursor
        if not page.has_more:
            return seen, cursor


@pytest.fixture(params=["rest", "prima"])
def erp(request, sandbox):
    if request.param == "rest":
        return sandbox.erp, RestErpClient.from_settings(), f"{sandbox.url}/erp/_sandbox"
    return sandbox.prima, PrimaClient.from_settings(), f"{sandbox.url}/prima/_sandbox"


def test_an_item_arrives_with_every_field_and_exact_scoped_prices(erp):
    app, client, _ = erp
    assert supports(client, ITEM_MASTER)
    _item(app, "TEE-M", components=[{"item_code": "MUG-001", "quantity": 2}], images=["https://img/1.jpg"])
    [item] = client.items_changed_since("", limit=10).items
    assert item.id.startswith("ITM-") and item.code == "TEE-M" and item.product_key == "TEE"
    assert (item.unit_cost, item.lead_time_days, item.tax_code, item.depot) == (Decimal("4.20"), 14, "T1", "MAIN")
    assert item.attributes == {"size": "M"} and item.barcodes == ("5000000000001",) and item.images == ("https://img/1.jpg",)
    assert [(c.item_code, c.quantity) for c in item.components] == [("MUG-001", 2)]
    tier = next(p for p in item.prices if p.min_quantity == 10)
    assert tier.amount == Decimal("17.505") and tier.price_list == "UK-TIERS"
    trade = next(p for p in item.prices if p.customer_group)
    assert (trade.currency, trade.country, trade.customer_group, trade.channel) == ("EUR", "DE", "trade", "web-de")
    assert trade.valid_from == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert trade.valid_until == datetime(2026, 7, 1, tzinfo=timezone.utc)
    assert item.status == "active" and item.updated_at is not None


def test_the_cursor_never_skips_or_repeats_while_items_change_between_pages(erp):
    app, client, _ = erp
    for n in range(5):
        _item(app, f"C-{n}")
    first = client.items_changed_since("", limit=2)
    assert [i.code for i in first.items] == ["C-0", "C-1"] and first.has_more
    # Changed while the reader is between pages: C-0 (already read) and C-3 (not yet read).
    app.item_master_change("C-0", prices=[{"currency": "GBP", "amount": "9.99"}])
    app.item_master_change("C-3", name="Tee (new)")
    rest, cursor = _read_all(client, first.cursor)
    assert [i.code for i in rest] == ["C-2", "C-4", "C-0", "C-3"]
    assert rest[-1].name == "Tee (new)" and rest[2].prices[0].amount == Decimal("9.99")
    # Resuming from the last cursor finds nothing more until something changes.
    page = client.items_changed_since(cursor, limit=2)
    assert page.items == [] and not page.has_more and page.cursor == cursor
    app.item_master_change("C-1", status="retired")
    assert [(i.code, i.status) for i in client.items_changed_since(cursor).items] == [("C-1", "retired")]


def test_a_renamed_item_keeps_its_id_and_stock(erp, sandbox):
    app, client, admin = erp
    _item(app, "OLD-CODE")
    app.add_depot("MAIN")
    app.set_stock("OLD-CODE", "MAIN", on_hand=7)
    [before] = client.items_changed_since("").items
    answer = requests.post(f"{admin}/items/OLD-CODE", json={"new_code": "NEW-CODE", "name": "Renamed"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["code"] == "NEW-CODE"
    [after] = client.items_changed_since("").items
    assert after.id == before.id and after.code == "NEW-CODE" and after.name == "Renamed"
    assert app.stock[("NEW-CODE", "MAIN")]["on_hand"] == 7 and ("OLD-CODE", "MAIN") not in app.stock


def test_a_cursor_the_erp_never_gave_is_refused(erp):
    app, client, _ = erp
    _item(app, "X-1")
    with pytest.raises(PermanentError):
        client.items_changed_since("not-a-cursor!")


def test_the_old_items_listing_is_unchanged(sandbox):
    sandbox.erp.add_item("MUG-001", "Enamel mug", tax_code="T1", prices=[{"currency": "GBP", "amount": "9.50"}])
    body = requests.get(f"{sandbox.url}/erp/api/v1/items", headers={"Authorization": "Bearer sandbox-erp-key"},
                        timeout=5).json()
    assert body["page"] == 1 and body["next_page"] is None and body["total"] == 1
    row = body["data"][0]
    assert (row["code"], row["description"], row["active"], row["tax_code"]) == ("MUG-001", "Enamel mug", True, "T1")
    assert [code for code, _ in RestErpClient.from_settings().item_prices()] == ["MUG-001"]


def test_the_demo_catalogue_has_variants_scoped_prices_and_one_incomplete_item(sandbox):
    sandbox.erp.seed_demo()
    requests.post(f"{sandbox.url}/erp/_sandbox/seed-catalogue", timeout=5).raise_for_status()
    items = {i.code: i for i in _read_all(RestErpClient.from_settings(), limit=200)[0]}
    socks = [i for i in items.values() if i.product_key == "SOCK-NVY"]
    assert len(socks) == 3 and {i.attributes["size"] for i in socks} == {"S", "M", "L"}
    scopes = {(p.currency, p.country, p.customer_group, p.min_quantity) for p in items["SOCK-NVY-M"].prices}
    assert {("GBP", "", "", 3), ("GBP", "", "trade", 1), ("EUR", "DE", "", 1)} <= scopes
    assert items["CAP-RED"].tax_code == "" and items["CAP-RED"].lead_time_days is None
    assert items["SHIPPING"].product_type == "service"
    assert items["TEE-BLK-M"].product_key == items["TEE-WHT-M"].product_key == "TEE"  # one product, two colours
    assert items["TEE-BLK-M"].unit_cost == Decimal("6.40")
