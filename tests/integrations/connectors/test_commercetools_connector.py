"""The commercetools connector against our sandbox over real HTTP, and the Order translation."""
from decimal import Decimal

import pytest
import requests

from integrations.connectors.base import Conflict, NotFound, PermanentError
from integrations.connectors.commercetools import (
    LEDGERLINE_SCOPES,
    AuthenticationFailed,
    CommercetoolsClient,
    MissingScope,
    ledgerline_scope,
)
from integrations.sandbox.server import RateLimiter


@pytest.fixture
def ct(sandbox):
    sandbox.commercetools.seed_demo()
    return sandbox.commercetools


@pytest.fixture
def client(ct):
    return CommercetoolsClient.from_settings(backoff_base=0.01, backoff_max=0.05)


def order_ids(orders):
    return [o["id"] for o in orders]


# --- auth ------------------------------------------------------------------------------------


def test_it_fetches_one_token_and_reuses_it(client, ct):
    client.list_channels()
    client.list_channels()

    assert ct.tokens_issued == 1


def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(client, ct):
    client.list_channels()
    ct.expire_tokens()

    channels = client.list_channels()

    assert [c["key"] for c in channels] == ["main-warehouse", "north-store"]
    assert ct.tokens_issued == 2


def test_wrong_client_secret_is_refused(ct):
    client = CommercetoolsClient.from_settings(client_secret="not-the-secret")

    with pytest.raises(AuthenticationFailed) as excinfo:
        client.list_channels()

    assert excinfo.value.status == 401
    assert excinfo.value.code == "invalid_client"


def test_the_api_refuses_a_request_without_token(sandbox, ct):
    response = requests.get(f"{sandbox.url}/commercetools/ledgerline-demo/orders", timeout=5)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "invalid_token"


def test_token_response_has_the_documented_shape(sandbox, ct):
    response = requests.post(
        f"{sandbox.url}/commercetools/auth/oauth/token",
        auth=("sandbox-client", "sandbox-secret"),
        data={"grant_type": "client_credentials", "scope": "view_orders:ledgerline-demo"},
        timeout=5,
    )

    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "view_orders:ledgerline-demo"
    assert body["expires_in"] > 0 and body["access_token"]


# --- scopes --------------------------------------------------------------------------------------


def test_the_token_asks_for_the_configured_scope(client, ct, settings):
    client.list_channels()

    assert list(ct.token_scopes.values()) == [frozenset(settings.COMMERCETOOLS["scope"].split())]


def test_without_a_configured_scope_the_token_asks_only_for_what_ledgerline_uses(ct):
    client = CommercetoolsClient.from_settings(scope="")

    client.list_channels()

    assert client.scope == ledgerline_scope("ledgerline-demo")
    assert list(ct.token_scopes.values()) == [frozenset(f"{s}:ledgerline-demo" for s in LEDGERLINE_SCOPES)]


def test_a_client_holding_only_ledgerline_scopes_does_all_ledgerline_does(ct):
    ct.add_api_client("least-privilege", "lp-secret", ledgerline_scope("ledgerline-demo").split())
    client = CommercetoolsClient.from_settings(client_id="least-privilege", client_secret="lp-secret", scope="")
    order = ct.create_order(order_number="WEB-7")
    channel = client.list_channels()[0]

    entry = client.create_inventory_entry(sku="MUG-001", channel_id=channel["id"], quantity_on_stock=3)
    moved = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 2}])
    customer = client.create_customer(email="ada@example.com")

    assert moved["quantityOnStock"] == 5
    assert [o["id"] for page in client.orders_modified_since("", "") for o in page] == [order["id"]]
    assert client.get_order_by_number("WEB-7")["id"] == order["id"]
    assert [c["id"] for c in client.find_customers_by_email("ada@example.com")] == [customer["id"]]
    assert {v["sku"] for v in client.list_variants()} >= {"MUG-001", "HOODIE-GRY-L"}


def test_a_token_without_the_scope_is_refused_with_an_error_naming_it(ct):
    ct.add_api_client("orders-reader", "reader-secret", ["view_orders:ledgerline-demo"])
    client = CommercetoolsClient.from_settings(client_id="orders-reader", client_secret="reader-secret",
                                               scope="view_orders:ledgerline-demo")
    entry = ct.create_inventory_entry(sku="MUG-001", channel_key="main-warehouse", quantity_on_stock=10)

    assert client.query_orders()["results"] == []
    with pytest.raises(MissingScope) as excinfo:
        client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 5}])

    assert str(excinfo.value).startswith("commercetools client lacks scope manage_products:ledgerline-demo")
    assert f"POST /commercetools/ledgerline-demo/inventory/{entry['id']}" in str(excinfo.value)
    assert (excinfo.value.status, excinfo.value.code) == (403, "insufficient_scope")
    assert excinfo.value.scopes == ("manage_products:ledgerline-demo",)
    assert isinstance(excinfo.value, PermanentError)
    assert ct.inventory_entry("MUG-001", "main-warehouse")["quantityOnStock"] == 10


def test_a_route_with_several_possible_scopes_names_them_all(ct):
    ct.add_api_client("orders-reader", "reader-secret", ["view_orders:ledgerline-demo"])
    client = CommercetoolsClient.from_settings(client_id="orders-reader", client_secret="reader-secret",
                                               scope="view_orders:ledgerline-demo")

    with pytest.raises(MissingScope) as excinfo:
        client.list_channels()

    assert excinfo.value.scopes == ("view_channels:ledgerline-demo", "view_products:ledgerline-demo")
    assert "lacks scope view_channels:ledgerline-demo or view_products:ledgerline-demo" in str(excinfo.value)


def test_asking_for_a_scope_the_client_does_not_hold_is_a_clear_error(ct):
    ct.add_api_client("orders-reader", "reader-secret", ["view_orders:ledgerline-demo"])
    client = CommercetoolsClient.from_settings(client_id="orders-reader", client_secret="reader-secret",
                                               scope="view_orders:ledgerline-demo manage_orders:ledgerline-demo")

    with pytest.raises(MissingScope) as excinfo:
        client.query_orders()

    assert str(excinfo.value).startswith("commercetools client lacks scope manage_orders:ledgerline-demo (")
    assert (excinfo.value.status, excinfo.value.code) == (400, "invalid_scope")
    assert client.stats.requests == 1  # not retried: a person must grant the scope
    assert ct.tokens_issued == 0


def test_a_scope_in_another_project_is_refused_at_the_token_endpoint(ct):
    client = CommercetoolsClient.from_settings(scope="manage_project:another-project")

    with pytest.raises(MissingScope, match="lacks scope manage_project:another-project"):
        client.list_channels()


# --- lookups and error shapes ------------------------------------------------------------------------


def test_an_order_is_found_by_a_number_that_needs_url_encoding(client, ct):
    order = ct.create_order(order_number="WEB/2024 #7+ä",
                            line_items=[{"sku": "MUG-001", "price": "9.00", "channel": "north-store"}])
    ct.create_order(order_number="WEB")

    found = client.get_order_by_number("WEB/2024 #7+ä")

    assert found["id"] == order["id"]
    assert found["lineItems"][0]["supplyChannel"]["obj"]["key"] == "north-store"  # expanded as get_order does
    assert ct.queries_seen[-1][0] == "/ledgerline-demo/orders/order-number=WEB%2F2024%20%237%2B%C3%A4"
    assert client.get_order_by_number("WEB/2024 #8") is None


def test_an_invalid_json_input_error_says_what_was_wrong(client, ct):
    with pytest.raises(PermanentError) as excinfo:
        client.api("POST", "inventory", json={"sku": "MUG-001", "quantityOnStock": "ten"})

    assert (excinfo.value.status, excinfo.value.code) == (400, "InvalidJsonInput")
    assert "quantityOnStock: expected int" in str(excinfo.value)


def test_an_unknown_route_is_not_found(client, ct):
    with pytest.raises(NotFound) as excinfo:
        client.api("GET", "carts")

    assert excinfo.value.code == "ResourceNotFound"


# --- query predicates, sort, paging ------------------------------------------------------------


def test_where_filters_orders_by_nested_fields_and_or(client, ct):
    red = ct.create_order(line_items=[{"sku": "TEE-RED-M", "quantity": 1, "price": "25.00"}], payment_state="Paid")
    blue = ct.create_order(line_items=[{"sku": "TEE-BLUE-M", "quantity": 1, "price": "25.00"}])
    ct.create_order(line_items=[{"sku": "MUG", "quantity": 1, "price": "9.00"}], payment_state="Pending")

    by_sku = client.query_orders(where='lineItems(variant(sku = "TEE-RED-M")) OR lineItems(variant(sku = "TEE-BLUE-M"))')
    paid_red = client.query_orders(where=['paymentState = "Paid"', 'lineItems(variant(sku in ("TEE-RED-M", "X")))'])
    unpaid = client.query_orders(where="paymentState is not defined")

    assert sorted(order_ids(by_sku["results"])) == sorted([red["id"], blue["id"]])
    assert order_ids(paid_red["results"]) == [red["id"]]
    assert order_ids(unpaid["results"]) == [blue["id"]]


def test_sort_limit_offset_and_total(client, ct):
    orders = [ct.create_order(order_number=f"N-{n}") for n in (3, 1, 2)]

    page = client.query_orders(sort=["orderNumber desc"], limit=2, offset=1)

    assert [o["orderNumber"] for o in page["results"]] == ["N-2", "N-1"]
    assert (page["limit"], page["offset"], page["count"], page["total"]) == (2, 1, 2, 3)
    assert len(orders) == 3


def test_a_malformed_predicate_is_a_400_invalid_input(client, ct):
    with pytest.raises(PermanentError) as excinfo:
        client.query_orders(where='orderNumber = "unterminated')

    assert excinfo.value.status == 400
    assert excinfo.value.code == "InvalidInput"


def test_limit_above_500_is_refused(client, ct):
    with pytest.raises(PermanentError) as excinfo:
        client.query_orders(limit=501)

    assert excinfo.value.status == 400


def test_cursor_pagination_keeps_every_order_once_across_equal_timestamps(client, ct):
    tie = "2099-01-01T10:00:00.000Z"  # later than anything the sandbox clock hands out
    tied = [ct.create_order(last_modified_at=tie) for _ in range(5)]
    recent = [ct.create_order() for _ in range(2)]
    expected = recent + sorted(tied, key=lambda o: o["id"])

    pages = list(client.orders_modified_since("", "", page_size=2))

    seen = [o["id"] for page in pages for o in page]
    assert seen == order_ids(expected)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    order_queries = [query for path, query in ct.queries_seen if path.endswith("/orders")]
    assert len(order_queries) == 4
    assert all("offset" not in q and q["sort"] == ["lastModifiedAt asc", "id asc"] for q in order_queries)


def test_cursor_pagination_resumes_inside_a_tie(client, ct):
    tie = "2099-01-01T10:00:00.000Z"
    tied = sorted((ct.create_order(last_modified_at=tie) for _ in range(3)), key=lambda o: o["id"])

    pages = list(client.orders_modified_since(tie, tied[0]["id"], page_size=10))

    assert [o["id"] for o in pages[0]] == order_ids(tied[1:])


def test_a_payment_state_change_moves_the_order_to_the_end_of_the_cursor(client, ct):
    first = ct.create_order()
    second = ct.create_order()
    paid = ct.set_payment_state(first["id"], "Paid")

    seen = [o["id"] for page in client.orders_modified_since(second["lastModifiedAt"], second["id"]) for o in page]

    assert seen == [first["id"]]
    assert paid["version"] == 2
    assert paid["lastModifiedAt"] > second["lastModifiedAt"]


def test_get_order_by_id_and_unknown_id(client, ct):
    order = ct.create_order(order_number="CT-42")

    assert client.get_order(order["id"])["orderNumber"] == "CT-42"
    with pytest.raises(NotFound):
        client.get_order("00000000-0000-0000-0000-000000000000")


def test_a_rate_limited_call_waits_for_retry_after_and_succeeds(client, ct):
    ct.limiter = RateLimiter(1)  # one call per second: three quick calls must hit a 429

    results = [client.list_channels() for _ in range(3)]

    assert all(len(channels) == 2 for channels in results)
    assert client.stats.rate_limited >= 1
    assert ct.limiter.rejected >= 1


# --- customers ---------------------------------------------------------------------------------


def test_create_then_find_customer_by_email(client, ct):
    created = client.create_customer(email="ada@example.com", first_name="Ada", last_name="Lovelace")

    found = client.find_customers_by_email("ada@example.com")

    assert [c["id"] for c in found] == [created["id"]]
    assert client.find_customers_by_email("nobody@example.com") == []


def test_a_second_customer_with_the_same_email_is_refused(client, ct):
    client.create_customer(email="ada@example.com")

    with pytest.raises(PermanentError) as excinfo:
        client.create_customer(email="ada@example.com")

    assert excinfo.value.code == "DuplicateField"


# --- inventory ---------------------------------------------------------------------------------


def test_a_stale_inventory_version_raises_conflict_with_the_current_version(client, ct):
    channel = ct.channel_by_key("main-warehouse")
    ct.create_inventory_entry(sku="TEE-RED-M", channel_key="main-warehouse", quantity_on_stock=10)
    entry = client.get_inventory_entry("TEE-RED-M", channel["id"])
    ct.reserve("TEE-RED-M", "main-warehouse", 2)  # a checkout moved the entry on

    with pytest.raises(Conflict) as excinfo:
        client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 5}])

    assert excinfo.value.current_version == entry["version"] + 1
    assert ct.inventory_entry("TEE-RED-M", "main-warehouse")["quantityOnStock"] == 10


def test_a_reservation_survives_an_add_quantity_push(client, ct):
    channel = ct.channel_by_key("north-store")
    ct.create_inventory_entry(sku="MUG", channel_key="north-store", quantity_on_stock=10)
    ct.reserve("MUG", "north-store", 3)
    entry = client.get_inventory_entry("MUG", channel["id"])

    updated = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 5}])

    assert (updated["quantityOnStock"], updated["availableQuantity"]) == (15, 12)
    removed = client.update_inventory_entry(updated["id"], updated["version"],
                                            [{"action": "removeQuantity", "quantity": 4}])
    assert (removed["quantityOnStock"], removed["availableQuantity"]) == (11, 8)


def test_change_quantity_sets_stock_and_keeps_reservations(client, ct):
    channel = ct.channel_by_key("main-warehouse")
    ct.create_inventory_entry(sku="MUG", channel_key="main-warehouse", quantity_on_stock=10)
    ct.reserve("MUG", "main-warehouse", 4)
    entry = client.get_inventory_entry("MUG", channel["id"])

    updated = client.update_inventory_entry(entry["id"], entry["version"],
                                            [{"action": "changeQuantity", "quantity": 20}])

    assert (updated["quantityOnStock"], updated["availableQuantity"]) == (20, 16)


def test_inventory_entries_are_found_per_channel_and_paged(client, ct):
    north = ct.channel_by_key("north-store")
    for n in range(5):
        ct.create_inventory_entry(sku=f"SKU-{n}", channel_key="north-store", quantity_on_stock=n)
    ct.create_inventory_entry(sku="SKU-0", channel_key="main-warehouse", quantity_on_stock=99)

    entries = list(client.inventory_entries(f'supplyChannel(id = "{north["id"]}")', page_size=2))

    assert sorted(e["sku"] for e in entries) == [f"SKU-{n}" for n in range(5)]
    assert client.get_inventory_entry("SKU-0", north["id"])["quantityOnStock"] == 0
    assert client.get_inventory_entry("NOPE", north["id"]) is None


# --- Order translation -------------------------------------------------------------------------


def test_cent_precision_order_is_translated_exactly(client, ct):
    payload = ct.create_order(
        currency="EUR",
        customer_email="ada@example.com",
        payment_state="Paid",
        line_items=[
            {"sku": "TEE-RED-M", "name": "Red tee", "quantity": 3, "price": "19.99", "discounted_price": "17.99",
             "channel": "north-store"},
        ],
        custom_line_items=[{"name": "Gift wrap", "price": "2.50"}],
        shipping={"name": "Express", "price": "7.90", "discounted_price": "5.90"},
    )

    order = CommercetoolsClient.order_from_payload(client.get_order(payload["id"]))

    tee, wrap = order.lines
    assert (tee.sku, tee.quantity, tee.unit_price, tee.discount) == ("TEE-RED-M", 3, Decimal("19.99"), Decimal("6.00"))
    assert tee.tax_lines[0].rate == Decimal("0.19")
    assert tee.tax_lines[0].amount == Decimal("10.25")  # 19 % of 53.97, rounded half-even by the platform
    assert (wrap.kind, wrap.sku, wrap.unit_price) == ("custom", "", Decimal("2.50"))
    (ship,) = order.shipping
    assert (ship.kind, ship.name, ship.unit_price, ship.discount) == ("shipping", "Express", Decimal("7.90"), Decimal("2.00"))
    assert order.total == Decimal(payload["taxedPrice"]["totalGross"]["centAmount"]) / 100
    assert (order.payment_state, order.location, order.country) == ("Paid", "north-store", "DE")
    assert order.updated_at.isoformat().startswith(payload["lastModifiedAt"][:23])


def test_high_precision_amounts_keep_every_digit(ct):
    payload = ct.create_order(line_items=[{"sku": "BOLT", "quantity": 7, "price": "12.3456"}],
                              high_precision=True, fraction_digits=4)
    assert payload["lineItems"][0]["price"]["value"]["preciseAmount"] == 123456

    order = CommercetoolsClient.order_from_payload(payload)

    assert order.lines[0].unit_price == Decimal("12.3456")
    assert order.lines[0].unit_price * 7 == Decimal("86.4192")


def test_zero_decimal_currency_is_not_scaled(ct):
    payload = ct.create_order(currency="JPY", line_items=[{"sku": "TEA", "quantity": 2, "price": "1500"}],
                              shipping={"price": "800"})
    assert payload["lineItems"][0]["price"]["value"] == {
        "type": "centPrecision", "currencyCode": "JPY", "centAmount": 1500, "fractionDigits": 0}

    order = CommercetoolsClient.order_from_payload(payload)

    assert order.currency == "JPY"
    assert order.lines[0].unit_price == Decimal(1500)
    assert order.shipping[0].unit_price == Decimal(800)


def test_payment_state_defaults_to_blank(ct):
    order = CommercetoolsClient.order_from_payload(ct.create_order())

    assert order.payment_state == ""
    assert order.location == ""


@pytest.mark.parametrize(
    "breakage",
    [
        lambda o: o.pop("totalPrice"),
        lambda o: o["lineItems"][0].pop("price"),
        lambda o: o["lineItems"][0]["price"]["value"].update(currencyCode="USD"),
        lambda o: o["lineItems"][0]["price"]["value"].pop("centAmount"),
        lambda o: o.update(lastModifiedAt="yesterday"),
    ],
    ids=["no-total", "no-price", "mixed-currency", "no-cent-amount", "bad-timestamp"],
)
def test_a_malformed_order_is_a_clear_value_error(ct, breakage):
    payload = ct.create_order()
    breakage(payload)

    with pytest.raises(ValueError, match=payload["id"]):
        CommercetoolsClient.order_from_payload(payload)


# --- the sandbox's admin endpoints (a sandbox in another process) -------------------------------


def test_admin_endpoints_create_orders_and_mark_them_paid(sandbox, client, ct):
    admin = f"{sandbox.url}/commercetools/_sandbox"

    created = requests.post(f"{admin}/orders", json={
        "order_number": "WEB-1", "line_items": [{"sku": "MUG", "quantity": 2, "price": "9.50", "channel": "main-warehouse"}],
    }, timeout=5)
    order_id = created.json()["id"]
    paid = requests.post(f"{admin}/orders/{order_id}/payment-state", json={"paymentState": "Paid"}, timeout=5)
    stats = requests.get(f"{admin}/stats", timeout=5).json()

    assert created.status_code == 201 and paid.status_code == 200
    fetched = client.get_order(order_id)
    assert (fetched["orderNumber"], fetched["paymentState"], fetched["version"]) == ("WEB-1", "Paid", 2)
    assert (stats["orders"], stats["channels"]) == (1, 2)
    assert [m["type"] for m in ct.messages] == ["OrderCreated", "OrderPaymentStateChanged"]
    assert ct.messages[1]["resource"] == {"typeId": "order", "id": order_id}
    assert ct.messages[1]["sequenceNumber"] == 2 and ct.messages[1]["resourceVersion"] == 2

    requests.post(f"{admin}/reset", timeout=5)
    requests.post(f"{admin}/seed-demo", timeout=5)
    assert requests.get(f"{admin}/stats", timeout=5).json()["orders"] == 0
    assert sorted(c["key"] for c in ct.channels.values()) == ["main-warehouse", "north-store"]


def test_every_product_variant_is_listed_page_by_page(client, ct):
    ct.reset()
    tee = ct.add_product("Tee", ["TEE-S", "TEE-M", "TEE-L"])
    mug = ct.add_product("Mug", ["MUG-1"])
    poster = ct.add_product("Poster", ["POSTER-A2", "POSTER-A3"])
    variants = list(client.list_variants(page_size=2))
    assert sorted((v["sku"], v["product_title"]) for v in variants) == [
        ("MUG-1", "Mug"), ("POSTER-A2", "Poster"), ("POSTER-A3", "Poster"),
        ("TEE-L", "Tee"), ("TEE-M", "Tee"), ("TEE-S", "Tee")]
    assert {v["product_id"] for v in variants} == {tee["id"], mug["id"], poster["id"]}
    pages = [q for path, q in ct.queries_seen if path.endswith("/product-projections")]
    assert len(pages) == 2  # 2 full pages of 2 products, then a short one ends it
    assert all(q["staged"] == ["false"] and q["sort"] == ["id asc"] for q in pages)
    assert "where" not in pages[0] and pages[1]["where"][0].startswith("id > ")
