"""The Shopify client against the Shopify sandbox over real HTTP: throttling, compare-and-set,
deltas that keep reservations, batching, lookups, and the order payload translation."""
import json
import math
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from integrations.connectors.shopify import API_VERSIONS, ShopifyAuthError, ShopifyClient
from integrations.domain import TaxLine

MAIN = "gid://shopify/Location/1"
NORTH = "gid://shopify/Location/2"
LOCATIONS_QUERY = "{ locations(first: 2) { nodes { id name } } }"  # costs 2 + 2 = 4 points, all used


class RecordingSleep:
    """Really sleeps (the sandbox bucket refills in real time) and remembers every wait."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
def shopify(sandbox, sleep):
    return ShopifyClient.from_settings(sleep=sleep, backoff_base=0.01, backoff_max=0.05)


def _raw_graphql(sandbox, query, token="shpat_sandbox_token"):
    headers = {"X-Shopify-Access-Token": token} if token else {}
    return requests.post(f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json", json={"query": query},
                         headers=headers, timeout=5)


# --- auth and throttling ---------------------------------------------------------------------------


def test_a_wrong_access_token_is_a_permanent_auth_error(sandbox):
    client = ShopifyClient(f"{sandbox.url}/shopify", "shpat_wrong")
    with pytest.raises(ShopifyAuthError) as caught:
        client.list_locations()
    assert caught.value.status == 401
    assert sandbox.shopify.graphql_requests == 0


def test_a_throttled_query_waits_for_the_bucket_and_then_succeeds(sandbox, shopify, sleep):
    sandbox.shopify.configure(bucket_size=10, restore_rate=10)
    # Someone else (another worker) drains the bucket: Shopify answers THROTTLED, as a 200.
    raw = None
    for _ in range(5):
        raw = _raw_graphql(sandbox, LOCATIONS_QUERY)
        if raw.json().get("errors"):
            break
    assert raw.status_code == 200
    assert raw.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    throttled_before = sandbox.shopify.throttled

    data = shopify.graphql(LOCATIONS_QUERY)

    assert [loc["name"] for loc in data["locations"]["nodes"]] == ["Main warehouse", "Northern store"]
    assert sandbox.shopify.throttled == throttled_before + 1  # our client was throttled once, then waited
    assert len(sleep.waits) == 1
    # (requested 4 - currentlyAvailable) / restoreRate 10
    assert 0 < sleep.waits[0] <= 4 / 10


def test_the_client_waits_before_sending_when_the_last_status_shows_the_bucket_cannot_pay(sandbox, shopify, sleep):
    sandbox.shopify.configure(bucket_size=10, restore_rate=10)
    for _ in range(3):
        shopify.graphql(LOCATIONS_QUERY)  # 10 -> 6 -> 2 -> (waits until 4) -> ~0
    assert sandbox.shopify.throttled == 0  # never sent a query the bucket could not pay
    assert len(sleep.waits) == 1 and sleep.waits[0] > 0


# --- lookups ---------------------------------------------------------------------------------------


def test_find_variants_by_sku_returns_the_ids_of_known_skus_only(sandbox, shopify):
    found = shopify.find_variants_by_sku(["TEE-BLK-S", "MUG-001", "NOT-IN-SHOPIFY"])
    assert set(found) == {"TEE-BLK-S", "MUG-001"}
    tee = sandbox.shopify.variant_by_sku("TEE-BLK-S")
    assert found["TEE-BLK-S"]["variant_id"] == f"gid://shopify/ProductVariant/{tee['number']}"
    assert found["TEE-BLK-S"]["inventory_item_id"] == sandbox.shopify.inventory_item_id("TEE-BLK-S")
    assert found["TEE-BLK-S"]["product_id"] == f"gid://shopify/Product/{tee['product']}"


def test_find_variants_by_sku_batches_the_search(sandbox, shopify):
    skus = [f"BULK-{i:03d}" for i in range(120)]
    sandbox.shopify.add_product("Bulk", [{"sku": s, "price": "1.00"} for s in skus])
    before = sandbox.shopify.graphql_requests
    found = shopify.find_variants_by_sku(skus)
    assert set(found) == set(skus)
    assert sandbox.shopify.graphql_requests - before == math.ceil(120 / ShopifyClient.SKUS_PER_QUERY)


def test_list_variants_and_locations(sandbox, shopify):
    rows = list(shopify.list_variants())
    assert sorted(r["sku"] for r in rows) == sorted(
        ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-001", "HOODIE-GRY-L"])
    assert {r["product_title"] for r in rows} == {"Classic tee", "Enamel mug", "Hoodie"}
    assert shopify.list_locations() == [
        {"id": MAIN, "name": "Main warehouse", "is_active": True},
        {"id": NORTH, "name": "Northern store", "is_active": True},
    ]


def test_inventory_levels_reads_every_quantity_name(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("TEE-BLK-S")
    sandbox.shopify.reserve("TEE-BLK-S", MAIN, 2)
    levels = shopify.inventory_levels([item])
    assert set(levels) == {(item, MAIN), (item, NORTH)}
    assert levels[(item, MAIN)]["available"] == 38
    assert levels[(item, MAIN)]["reserved"] == 2
    assert levels[(item, MAIN)]["on_hand"] == 40
    assert set(shopify.inventory_levels([item], [NORTH])) == {(item, NORTH)}


# --- pushing stock ---------------------------------------------------------------------------------


def test_a_stale_compare_and_set_is_refused_and_changes_nothing(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("TEE-BLK-M")
    read = shopify.inventory_levels([item], [MAIN])[(item, MAIN)]["available"]
    sandbox.shopify.sell("TEE-BLK-M", MAIN, 1)  # a customer buys one between our read and our write

    errors = shopify.set_available_quantities(
        [{"inventory_item_id": item, "location_id": MAIN, "quantity": 60, "change_from": read}])

    assert [(e["code"], e["inventory_item_id"], e["location_id"]) for e in errors] == [
        ("CHANGE_FROM_QUANTITY_STALE", item, MAIN)]
    assert sandbox.shopify.level("TEE-BLK-M", MAIN)["available"] == read - 1
    assert sandbox.shopify.level("TEE-BLK-M", MAIN)["committed"] == 1


def test_a_stale_entry_does_not_block_the_others_in_its_batch(sandbox, shopify):
    tee, mug = sandbox.shopify.inventory_item_id("TEE-BLK-M"), sandbox.shopify.inventory_item_id("MUG-001")
    sandbox.shopify.reserve("TEE-BLK-M", MAIN, 1)
    errors = shopify.set_available_quantities([
        {"inventory_item_id": tee, "location_id": MAIN, "quantity": 60, "change_from": 55},  # stale now
        {"inventory_item_id": mug, "location_id": MAIN, "quantity": 100, "change_from": 120},
    ])
    assert [e["inventory_item_id"] for e in errors] == [tee]
    assert sandbox.shopify.level("MUG-001", MAIN)["available"] == 100
    assert sandbox.shopify.level("TEE-BLK-M", MAIN)["available"] == 54


def test_adjusting_by_delta_keeps_a_reservation_made_between_read_and_write(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("HOODIE-GRY-L")
    before = shopify.inventory_levels([item], [MAIN])[(item, MAIN)]
    assert before["available"] == 15
    sandbox.shopify.reserve("HOODIE-GRY-L", MAIN, 3)  # a checkout in progress

    errors = shopify.adjust_available_quantities([{"inventory_item_id": item, "location_id": MAIN, "delta": 10}],
                                                 reason="received")

    assert errors == []
    level = sandbox.shopify.level("HOODIE-GRY-L", MAIN)
    assert (level["available"], level["reserved"], level["on_hand"]) == (22, 3, 25)
    assert sandbox.shopify.adjustments[-1]["reason"] == "received"


def test_set_quantities_is_sent_in_batches_of_the_api_maximum(sandbox, shopify):
    skus = [f"BULK-{i:03d}" for i in range(300)]
    sandbox.shopify.add_product("Bulk", [{"sku": s, "price": "1.00"} for s in skus])
    items = [sandbox.shopify.inventory_item_id(s) for s in skus]
    changes = [{"inventory_item_id": item, "location_id": loc, "quantity": 7, "change_from": 0}
               for item in items for loc in (MAIN, NORTH)][:520]

    errors = shopify.set_available_quantities(changes)

    assert errors == []
    assert sandbox.shopify.mutation_calls["inventorySetQuantities"] == math.ceil(520 / 250) == 3
    assert all(sandbox.shopify.level(c["inventory_item_id"], c["location_id"])["available"] == 7 for c in changes)
    assert sandbox.shopify.level(items[-1], NORTH)["available"] == 0  # change 601 was not in the list


def test_adjust_quantities_is_sent_in_batches_and_skips_zero_deltas(sandbox, shopify):
    skus = [f"BULK-{i:03d}" for i in range(260)]
    sandbox.shopify.add_product("Bulk", [{"sku": s, "price": "1.00"} for s in skus])
    changes = [{"inventory_item_id": sandbox.shopify.inventory_item_id(s), "location_id": MAIN, "delta": 2} for s in skus]
    changes.append({"inventory_item_id": sandbox.shopify.inventory_item_id("MUG-001"), "location_id": MAIN, "delta": 0})
    assert shopify.adjust_available_quantities(changes) == []
    assert sandbox.shopify.mutation_calls["inventoryAdjustQuantities"] == 2
    assert sandbox.shopify.level("BULK-259", MAIN)["available"] == 2


def test_changes_without_change_from_are_rejected_before_sending(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("MUG-001")
    with pytest.raises(ValueError, match="change_from"):
        shopify.set_available_quantities([{"inventory_item_id": item, "location_id": MAIN, "quantity": 5}])
    assert sandbox.shopify.mutation_calls == {}


# --- orders ----------------------------------------------------------------------------------------


def _multi_line_order(sandbox):
    return sandbox.shopify.create_order(
        line_items=[
            {"sku": "TEE-BLK-S", "quantity": 2, "discount": "2.00"},  # 2 x 19.99, tax 20 % of 37.98
            {"sku": "MUG-001", "quantity": 3, "price": "9.50", "tax_rate": "0.05"},
            {"title": "Gift wrap", "price": "3.00", "quantity": 1},  # a custom item, no SKU
        ],
        shipping_lines=[{"title": "Express", "code": "EXP", "price": "7.95", "discount": "1.00"}],
        customer={"first_name": "Zoë", "last_name": "Müller", "email": "zoe@example.com"},
        shipping_address={"country_code": "IE", "country": "Ireland"},
        financial_status="paid",
        discount_code="SPRING",
    )


def test_order_from_payload_gives_exact_amounts_for_a_multi_line_order(sandbox):
    payload = _multi_line_order(sandbox)

    order = ShopifyClient.order_from_payload(payload)

    assert order.storefront_order_id == str(payload["id"])
    assert (order.order_number, order.currency, order.payment_state) == ("#1001", "GBP", "paid")
    assert (order.customer_name, order.customer_email, order.country) == ("Zoë Müller", "zoe@example.com", "IE")
    assert order.location == MAIN and order.cancelled is False
    tee, mug, wrap = order.lines
    assert (tee.sku, tee.quantity, tee.unit_price, tee.discount, tee.kind) == ("TEE-BLK-S", 2, Decimal("19.99"), Decimal("2.00"), "item")
    assert tee.tax_lines == (TaxLine(rate=Decimal("0.2"), amount=Decimal("7.60"), title="VAT"),)
    assert mug.tax_lines == (TaxLine(rate=Decimal("0.05"), amount=Decimal("1.42"), title="VAT"),)  # 1.425 half-even
    assert (wrap.sku, wrap.kind, wrap.unit_price, wrap.name) == ("", "custom", Decimal("3.00"), "Gift wrap")
    assert wrap.tax_lines[0].amount == Decimal("0.60")
    (shipping,) = order.shipping
    assert (shipping.kind, shipping.sku, shipping.quantity, shipping.name) == ("shipping", "", 1, "Express")
    assert (shipping.unit_price, shipping.discount, shipping.tax_lines[0].amount) == (Decimal("7.95"), Decimal("1.00"), Decimal("1.39"))
    assert order.order_discount == Decimal("0")  # every discount was allocated to a line
    # 39.98 + 28.50 + 3.00 - 2.00 + 7.95 - 1.00 + (7.60 + 1.42 + 0.60 + 1.39)
    assert order.total == Decimal("87.44")
    assert all(isinstance(x, Decimal) for line in order.lines for x in (line.unit_price, line.discount))
    assert order.updated_at.tzinfo is not None and order.created_at <= order.updated_at


def test_order_from_payload_falls_back_to_billing_country_and_reads_cancellation():
    payload = {
        "id": 42, "currency": "EUR", "name": "#1043", "financial_status": "authorized", "total_price": "10.00",
        "cancelled_at": "2026-11-20T10:00:00-05:00", "updated_at": "2026-11-20T10:00:00-05:00",
        "billing_address": {"country_code": "de"}, "email": "a@example.com",
        "line_items": [{"id": 1, "sku": "MUG-001", "variant_id": 9, "quantity": 1, "price": "10.00",
                        "tax_lines": [{"title": "MwSt", "rate": 0.19, "price": "1.90"}], "discount_allocations": []}],
    }
    order = ShopifyClient.order_from_payload(payload)
    assert order.country == "DE" and order.cancelled is True and order.payment_state == "authorized"
    assert order.updated_at == datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
    assert order.lines[0].tax_lines == (TaxLine(rate=Decimal("0.19"), amount=Decimal("1.90"), title="MwSt"),)
    assert order.location == "" and order.shipping == ()


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda p: p["line_items"][2].pop("quantity"), "line_items[2].quantity is missing"),
        (lambda p: p["line_items"][0].update(price="12,00", price_set=None), "line_items[0].price '12,00' is not a decimal amount"),
        (lambda p: p.pop("currency"), "order.currency is missing"),
        (lambda p: p["shipping_lines"][0]["tax_lines"][0].pop("rate"), "shipping_lines[0].tax_lines[0].rate is missing"),
        (lambda p: p.update(line_items="none"), "order.line_items is missing or not a list"),
    ],
    ids=["no-quantity", "bad-price", "no-currency", "no-tax-rate", "no-lines"],
)
def test_order_from_payload_names_the_malformed_field(sandbox, breakage, message):
    payload = _multi_line_order(sandbox)
    breakage(payload)
    with pytest.raises(ValueError) as caught:
        ShopifyClient.order_from_payload(payload)
    assert str(caught.value) == message


def test_get_order_payload_returns_what_the_webhook_carried(sandbox, shopify):
    payload = _multi_line_order(sandbox)
    assert shopify.get_order_payload(payload["admin_graphql_api_id"]) == payload


def test_orders_updated_since_lists_orders_changed_after_a_moment(sandbox, shopify):
    first = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    second = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    paid = sandbox.shopify.mark_paid(first["id"])
    since = datetime.fromisoformat(second["updated_at"])
    rows = list(shopify.orders_updated_since(since))
    assert [(r["id"], r["financial_status"]) for r in rows] == [(str(first["id"]), "paid")]
    assert rows[0]["updated_at"] == paid["updated_at"]


# --- API version, idempotency, scopes, paging, REST limit ----------------------------------------------


def test_the_configured_version_is_supported_and_served_as_asked(sandbox, shopify, settings):
    assert settings.SHOPIFY["api_version"] == "2026-04"
    assert settings.SHOPIFY["api_version"] in API_VERSIONS
    shopify.list_locations()
    assert shopify.served_api_version == "2026-04"


def test_a_retired_version_is_noticed_from_what_shopify_says_it_served(sandbox, caplog):
    client = ShopifyClient(f"{sandbox.url}/shopify", "shpat_sandbox_token", "2025-10")
    with caplog.at_level("WARNING", logger="ledgerline.connectors.shopify"):
        client.list_locations()
    assert client.served_api_version == "2026-01"
    assert "asked for API version 2025-10, Shopify served 2026-01" in caplog.text


class TimeoutAfterSending(requests.adapters.HTTPAdapter):
    """The request reaches Shopify and is applied, but the answer is lost once (a read timeout)."""

    def __init__(self, losses: int = 1):
        super().__init__()
        self.losses = losses
        self.bodies: list[bytes] = []

    def send(self, request, **kw):
        response = super().send(request, **kw)
        self.bodies.append(request.body)
        if self.losses and b"mutation" in (request.body or b""):
            self.losses -= 1
            raise requests.ReadTimeout("answer lost")
        return response


def test_a_resent_stock_change_reuses_its_idempotency_key_and_is_applied_once(sandbox, shopify):
    adapter = TimeoutAfterSending()
    shopify.session.mount("http://", adapter)
    item = sandbox.shopify.inventory_item_id("HOODIE-GRY-L")

    errors = shopify.adjust_available_quantities([{"inventory_item_id": item, "location_id": MAIN, "delta": 5}])

    assert errors == []
    assert sandbox.shopify.level("HOODIE-GRY-L", MAIN)["available"] == 20  # 15 + 5, once
    assert sandbox.shopify.stats()["idempotent_replays"] == 1
    sent = [json.loads(b) for b in adapter.bodies if b"mutation" in b]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert sent[0]["variables"]["idempotencyKey"]
    assert sent[0]["variables"]["input"]["changes"][0]["changeFromQuantity"] is None  # explicit, as 2026-04 wants


def test_a_new_call_is_a_new_change_with_a_new_key(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("HOODIE-GRY-L")
    for _ in range(2):
        assert shopify.adjust_available_quantities([{"inventory_item_id": item, "location_id": MAIN, "delta": 1}]) == []
    assert sandbox.shopify.level("HOODIE-GRY-L", MAIN)["available"] == 17
    assert sandbox.shopify.stats()["idempotent_replays"] == 0


def test_a_repeated_call_with_the_same_idempotency_key_is_applied_once(sandbox, shopify):
    item = sandbox.shopify.inventory_item_id("MUG-001")
    change = [{"inventory_item_id": item, "location_id": MAIN, "quantity": 90, "change_from": 120}]
    assert shopify.set_available_quantities(change, idempotency_key="inventory-run/7") == []
    # A re-run of the same run after a crash sends the same change again: Shopify answers the first result.
    assert shopify.set_available_quantities(change, idempotency_key="inventory-run/7") == []
    assert sandbox.shopify.level("MUG-001", MAIN)["available"] == 90
    assert sandbox.shopify.stats()["idempotent_replays"] == 1


def test_the_rest_of_a_rejected_batch_is_sent_with_its_own_key(sandbox, shopify):
    tee, mug = sandbox.shopify.inventory_item_id("TEE-BLK-M"), sandbox.shopify.inventory_item_id("MUG-001")
    errors = shopify.set_available_quantities([
        {"inventory_item_id": tee, "location_id": MAIN, "quantity": 60, "change_from": 1},  # stale
        {"inventory_item_id": mug, "location_id": MAIN, "quantity": 100, "change_from": 120},
    ], idempotency_key="inventory-run/8")
    assert [e["code"] for e in errors] == ["CHANGE_FROM_QUANTITY_STALE"]  # no IDEMPOTENCY_KEY_PARAMETER_MISMATCH
    assert sandbox.shopify.level("MUG-001", MAIN)["available"] == 100


def test_a_token_without_write_inventory_is_a_permanent_access_denied(sandbox):
    token = sandbox.shopify.add_access_token(["read_products", "read_locations", "read_inventory"])
    client = ShopifyClient(f"{sandbox.url}/shopify", token, "2026-04", sleep=lambda s: None)
    item = sandbox.shopify.inventory_item_id("MUG-001")
    assert client.inventory_levels([item], [MAIN])[(item, MAIN)]["available"] == 120  # reading is allowed

    with pytest.raises(ShopifyAuthError) as caught:
        client.set_available_quantities([{"inventory_item_id": item, "location_id": MAIN, "quantity": 5, "change_from": 120}])

    assert caught.value.code == "ACCESS_DENIED"
    assert "write_inventory" in str(caught.value)
    assert sandbox.shopify.level("MUG-001", MAIN)["available"] == 120


def test_the_order_poll_lists_each_order_once_when_one_changes_between_pages(sandbox):
    orders = [sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}]) for _ in range(5)]

    class ChangesWhilePaging(ShopifyClient):
        PAGE_SIZE = 2
        pages = 0

        def graphql(self, query, variables=None, **kw):
            data = super().graphql(query, variables, **kw)
            ChangesWhilePaging.pages += 1
            if ChangesWhilePaging.pages == 1:  # a customer edits an order we already listed
                sandbox.shopify.update_order(orders[1]["id"], note="edited")
            return data

    client = ChangesWhilePaging.from_settings(sleep=lambda s: None)
    rows = list(client.orders_updated_since())

    assert sorted(r["id"] for r in rows) == sorted(str(o["id"]) for o in orders)  # none skipped, none twice
    assert ChangesWhilePaging.pages == 3


def test_rest_order_reads_wait_out_the_leaky_bucket(sandbox, shopify, sleep):
    order = sandbox.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    sandbox.shopify.configure(rest_bucket_size=2, rest_leak_rate=10)
    for _ in range(4):
        assert shopify.get_order_payload(order["id"])["id"] == order["id"]
    assert sandbox.shopify.stats()["rest_throttled"] >= 1
    assert sleep.waits and all(0 < w <= 0.2 for w in sleep.waits)  # Retry-After, not a guess
    assert shopify.stats.rate_limited == len(sleep.waits)
