"""Publishing the item master to commercetools, against our sandbox over real HTTP: products and variants
created by key, scoped and tiered prices exactly as the ERP states them (read back over HTTP), updates
that send only what changed, version races, retired products unpublished (never deleted), the price
drift check quiet after a push, and "restore ERP price"."""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from integrations.connectors import connector_for
from integrations.connectors.base import supports
from integrations.connectors.catalogue import PUBLISH_PRODUCTS, ItemPrice, Product, ProductVariant
from integrations.connectors.commercetools import CommercetoolsClient
from integrations.connectors.commercetools import catalogue_write as cw
from integrations.sandbox.server import RateLimiter

JAN = datetime(2027, 1, 1, tzinfo=timezone.utc)
FEB = datetime(2027, 2, 1, tzinfo=timezone.utc)


@pytest.fixture
def ct(sandbox):
    ct = sandbox.commercetools
    ct.create_channel(key="web", roles=("ProductDistribution",))
    return ct


@pytest.fixture
def client(ct):
    client = CommercetoolsClient.from_settings(backoff_base=0.01, backoff_max=0.05,
                                               connection_settings={"product_type": "default"})
    return client


def price(amount, currency="EUR", **scope):
    return ItemPrice(currency=currency, amount=Decimal(amount), **scope)


def tee(*, name="Classic tee", published=True, black_price="22.99", white_sku="TEE-WHT-M", extra=()):
    return Product(
        key="classic-tee", name=name, description="Heavy cotton.", tax_category="standard", published=published,
        variants=(
            ProductVariant(sku="TEE-BLK-M", item_id="I-100", attributes={"colour": "black", "size": "M"},
                           images=("https://img.example/tee-black.jpg",),
                           prices=(price(black_price), price("20.00", customer_group="vip"),
                                   price("21.50", channel="web"), price("19.00", min_quantity=10),
                                   price("17.50", min_quantity=50), price("18.99", "GBP", country="GB"),
                                   price("19.99", valid_from=JAN, valid_until=FEB, country="DE"))),
            ProductVariant(sku=white_sku, item_id="I-101", attributes={"colour": "white", "size": "M"},
                           prices=(price("9.995", "GBP"),)),
            *extra,
        ))


READ_EXPAND = [e.replace(".staged.", f".{data}.") for e in cw.EXPAND for data in ("staged", "current")]


def read(client, key="classic-tee"):
    """The Product as commercetools keeps it, its price and tax category references expanded."""
    return client.api("GET", f"products/key={key}", params=[("expand", e) for e in dict.fromkeys(READ_EXPAND)])


def ct_url(client):
    return client.api_url  # the sandbox's /commercetools


def updates(ct):
    return [path for method, path in ct.requests_seen if method == "POST" and "/products" in path]


# --- create ------------------------------------------------------------------------------------


def test_a_new_product_arrives_with_its_variants_and_every_price_exactly(client, ct):
    [result] = client.publish_products([tee()])

    assert result.ok and result.created, result.error
    product = read(client)
    assert result.storefront_id == product["id"]
    current = product["masterData"]["current"]
    assert product["masterData"]["published"] is True
    assert current["name"] == {"en": "Classic tee"} and current["slug"] == {"en": "classic-tee"}
    assert current["description"] == {"en": "Heavy cotton."}
    assert product["taxCategory"]["obj"]["key"] == "standard"
    assert product["productType"]["id"] == "sandbox-product-type"
    black, white = current["masterVariant"], current["variants"][0]
    assert (black["sku"], black["key"], white["sku"], white["key"]) == ("TEE-BLK-M", "I-100", "TEE-WHT-M", "I-101")
    assert result.variant_ids == {"TEE-BLK-M": f"{product['id']}/{black['id']}",
                                  "TEE-WHT-M": f"{product['id']}/{white['id']}"}
    assert black["attributes"] == [{"name": "colour", "value": "black"}, {"name": "size", "value": "M"}]
    assert black["images"] == [{"url": "https://img.example/tee-black.jpg", "dimensions": {"w": 0, "h": 0}}]

    prices = {(p["value"]["currencyCode"], p.get("country"), (p.get("customerGroup") or {}).get("obj", {}).get("key"),
               (p.get("channel") or {}).get("id"), p.get("validFrom")): p for p in black["prices"]}
    web = ct.channel_by_key("web")["id"]
    base = prices[("EUR", None, None, None, None)]
    assert base["value"] == {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 2299, "fractionDigits": 2}
    assert [(t["minimumQuantity"], t["value"]["centAmount"]) for t in base["tiers"]] == [(10, 1900), (50, 1750)]
    assert prices[("EUR", None, "vip", None, None)]["value"]["centAmount"] == 2000
    assert "tiers" not in prices[("EUR", None, "vip", None, None)]  # tiers belong to their own scope only
    assert prices[("EUR", None, None, web, None)]["value"]["centAmount"] == 2150
    assert prices[("GBP", "GB", None, None, None)]["value"]["centAmount"] == 1899
    dated = prices[("EUR", "DE", None, None, "2027-01-01T00:00:00.000Z")]
    assert (dated["validUntil"], dated["value"]["centAmount"]) == ("2027-02-01T00:00:00.000Z", 1999)
    assert len(black["prices"]) == 5  # the two tiers live inside the base price
    # 9.995 GBP has more decimals than pence: highPrecision, exact.
    assert white["prices"][0]["value"] == {"type": "highPrecision", "currencyCode": "GBP", "centAmount": 1000,
                                           "preciseAmount": 9995, "fractionDigits": 3}


def test_the_connection_can_ask_for_high_precision_prices(ct, ct_connection):
    ct_connection.settings = {"product_type": "default", "price_precision": "high", "high_precision_digits": 4}
    ct_connection.save()
    connector = connector_for(ct_connection)
    assert supports(connector, PUBLISH_PRODUCTS)

    [result] = connector.publish_products([Product(key="mug", name="Mug", variants=(
        ProductVariant(sku="MUG-1", item_id="I-1", prices=(price("9.50"),)),))])

    assert result.ok, result.error
    [stored] = read(connector, "mug")["masterData"]["current"]["masterVariant"]["prices"]
    assert stored["value"] == {"type": "highPrecision", "currencyCode": "EUR", "centAmount": 950,
                               "preciseAmount": 95000, "fractionDigits": 4}


# --- update ------------------------------------------------------------------------------------


def test_publishing_twice_creates_nothing_new_and_sends_no_update(client, ct):
    client.publish_products([tee()])
    before = len(updates(ct))

    [again] = client.publish_products([tee()])

    assert again.ok and not again.created
    assert len(updates(ct)) == before  # one read, nothing written
    query = client.api("GET", "products", params=[("where", 'key = "classic-tee"')])
    assert query["total"] == 1
    assert read(client)["version"] == 1


def test_a_change_sends_only_the_actions_it_needs_and_keeps_variant_ids(client, ct):
    [first] = client.publish_products([tee()])
    before = read(client)
    seen = len(ct.requests_seen)

    new_variant = ProductVariant(sku="TEE-RED-M", item_id="I-102", attributes={"colour": "red"},
                                 prices=(price("24.00"),))
    [second] = client.publish_products([tee(name="Classic tee, heavy", black_price="23.49", extra=(new_variant,))])
    sent = [(method, path.rsplit("/", 1)[-1]) for method, path in ct.requests_seen[seen:]]
    # The batch read, the channels' keys (once per call), one update with every action and the publish.
    assert sent == [("GET", "products"), ("GET", "channels"), ("POST", first.storefront_id)]

    assert second.ok and not second.created and second.storefront_id == first.storefront_id
    changed = tee(name="Classic tee, heavy", black_price="23.49", extra=(new_variant,))
    actions = cw.update_actions(before, changed, cw._Options({}), {ct.channel_by_key("web")["id"]: "web"})
    assert [a["action"] for a in actions] == ["changeName", "addVariant", "setPrices", "publish"]
    assert actions[2]["sku"] == "TEE-BLK-M"  # the white variant's prices did not change: not sent
    assert second.variant_ids["TEE-BLK-M"] == first.variant_ids["TEE-BLK-M"]
    assert set(second.variant_ids) == {"TEE-BLK-M", "TEE-WHT-M", "TEE-RED-M"}
    product = read(client)
    current = product["masterData"]["current"]
    assert current["name"] == {"en": "Classic tee, heavy"}
    assert product["masterData"]["hasStagedChanges"] is False
    base = next(p for p in current["masterVariant"]["prices"] if set(p) <= {"id", "value", "tiers"})
    assert base["value"]["centAmount"] == 2349 and len(base["tiers"]) == 2
    red = current["variants"][1]
    assert (red["sku"], red["prices"][0]["value"]["centAmount"]) == ("TEE-RED-M", 2400)
    assert client.api("GET", "products")["total"] == 1


def test_a_sku_renamed_in_the_erp_is_the_same_variant_with_a_new_sku(client, ct):
    [first] = client.publish_products([tee()])

    [second] = client.publish_products([tee(white_sku="TEE-WHT-M2")])

    assert second.ok, second.error
    assert second.variant_ids["TEE-WHT-M2"] == first.variant_ids["TEE-WHT-M"]
    skus = [v["sku"] for v in [read(client)["masterData"]["current"]["masterVariant"],
                               *read(client)["masterData"]["current"]["variants"]]]
    assert skus == ["TEE-BLK-M", "TEE-WHT-M2"]


def test_more_than_500_actions_go_in_several_requests_within_the_documented_limit(client, ct):
    client.publish_products([tee()])
    many = {f"a{n:03d}": str(n) for n in range(300)}
    product = tee()
    wide = Product(key=product.key, name=product.name, description=product.description,
                   tax_category=product.tax_category,
                   variants=tuple(ProductVariant(sku=v.sku, item_id=v.item_id, attributes={**v.attributes, **many},
                                                 prices=v.prices, images=v.images) for v in product.variants))
    seen = len(updates(ct))

    [result] = client.publish_products([wide])

    assert result.ok, result.error
    assert len(updates(ct)) - seen == 2  # 600 setAttribute + publish: 500, then 101
    current = read(client)["masterData"]["current"]
    assert len(current["variants"][0]["attributes"]) == 302
    assert read(client)["masterData"]["published"] and not read(client)["masterData"]["hasStagedChanges"]


# --- races, failures, retirement -------------------------------------------------------------


def test_a_version_race_is_read_again_and_retried(client, ct):
    client.publish_products([tee()])
    ct.concurrent_edits["classic-tee"] = 2  # two other writers get in first

    [result] = client.publish_products([tee(name="Renamed")])

    assert result.ok, result.error
    assert read(client)["masterData"]["current"]["name"] == {"en": "Renamed"}
    conflicts = [p for m, p in ct.requests_seen if m == "POST"]
    assert len(conflicts) >= 4  # create, two refused updates, the one that went through


def test_a_race_that_never_ends_is_a_retryable_result(client, ct):
    client.publish_products([tee()])
    ct.concurrent_edits["classic-tee"] = 100

    [result] = client.publish_products([tee(name="Renamed")])

    assert (result.ok, result.retryable) == (False, True)
    assert "ConcurrentModification" in result.error


def test_rate_limited_past_the_clients_attempts_is_retryable(ct):
    client = CommercetoolsClient.from_settings(max_attempts=1, connection_settings={"product_type": "default"})
    client.list_channels()  # the token, before the limit
    ct.limiter = RateLimiter(1)
    client.api("GET", "channels")  # this second's one request

    [result] = client.publish_products([tee()])

    assert (result.ok, result.retryable) == (False, True)
    assert "429" in result.error


def test_a_retired_product_is_unpublished_not_deleted(client, ct):
    client.publish_products([tee()])

    [result] = client.publish_products([tee(published=False)])

    assert result.ok, result.error
    product = read(client)  # still there
    assert product["masterData"]["published"] is False
    assert product["masterData"]["current"]["masterVariant"]["sku"] == "TEE-BLK-M"
    live = client.api("GET", "product-projections", params=[("staged", "false")])
    assert live["results"] == []
    assert [r["key"] for r in client.api("GET", "product-projections", params=[("staged", "true")])["results"]] == [
        "classic-tee"]
    [again] = client.publish_products([tee(published=False)])
    assert again.ok  # nothing more to do (no second unpublish)
    stats = requests.get(f"{ct_url(client)}/_sandbox/stats", timeout=5).json()
    assert (stats["products"], stats["published_products"]) == (1, 0)


def test_what_commercetools_refuses_is_a_permanent_result_with_its_reason(client, ct):
    ct.add_product("Other", ["TEE-WHT-M", "MUG-9"], key="other")  # the SKU is taken, beside one not ours

    [taken] = client.publish_products([tee()])
    [no_type] = client.publish_products([Product(key="mug", name="Mug", product_type="nope", variants=(
        ProductVariant(sku="MUG-1", item_id="I-1"),))])
    [no_base] = client.publish_products([Product(key="cup", name="Cup", variants=(
        ProductVariant(sku="CUP-1", item_id="I-2", prices=(price("5.00", min_quantity=10),)),))])

    assert (taken.ok, taken.retryable, taken.conflict) == (False, False, True)  # a person regroups them
    assert "product other" in taken.error and "TEE-WHT-M, MUG-9" in taken.error
    assert "ReferencedResourceNotFound" in no_type.error and "nope" in no_type.error
    assert "tier from 10 units has no base price" in no_base.error
    assert client.api("GET", "products")["total"] == 1  # only "other"


def test_without_manage_products_the_result_names_the_missing_scope(ct):
    ct.add_api_client("reader", "reader-secret", ["view_products:ledgerline-demo"])
    client = CommercetoolsClient.from_settings(client_id="reader", client_secret="reader-secret",
                                               scope="view_products:ledgerline-demo",
                                               connection_settings={"product_type": "default"})

    [result] = client.publish_products([tee()])

    assert (result.ok, result.retryable) == (False, False)
    assert "manage_products:ledgerline-demo" in result.error


def test_several_products_go_in_parallel_and_come_back_in_order(client, ct):
    products = [Product(key=f"p-{n}", name=f"P {n}", variants=(
        ProductVariant(sku=f"SKU-{n}", item_id=f"I-{n}", prices=(price(f"{n}.00"),)),)) for n in range(1, 21)]

    results = client.publish_products(products)

    assert [r.key for r in results] == [p.key for p in products]
    assert all(r.ok and r.created for r in results)
    assert client.api("GET", "products", params=[("limit", "500")])["total"] == 20
    assert cw.CONCURRENCY <= 8 and cw.DOCUMENTED_LIMITS["update_actions_per_request"] == 500


def test_an_unchanged_catalogue_costs_one_read_per_fifty_products(client, ct):
    products = [Product(key=f"p-{n}", name=f"P {n}", variants=(
        ProductVariant(sku=f"SKU-{n}", item_id=f"I-{n}", prices=(price("5.00"), price("4.50", customer_group="vip"))),))
        for n in range(120)]
    assert all(r.created for r in client.publish_products(products))
    seen = len(ct.requests_seen)

    results = client.publish_products(products)

    assert all(r.ok and not r.created for r in results)
    sent = sorted(path.rsplit("/", 1)[-1] for _, path in ct.requests_seen[seen:])
    assert sent == ["channels", "products", "products", "products"]  # 50 + 50 + 20 keys, and the channels' keys


# --- drift and restore -------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_a_push_the_price_drift_check_finds_nothing_and_restore_fixes_a_hand_edit(sandbox, ct, ct_connection):
    from exceptions_queue.models import ExceptionRecord
    from integrations.drift.registry import check_run
    from integrations.models import DriftRun

    erp_prices = [{"currency": "EUR", "amount": "22.99", "type": "list"},
                  {"currency": "EUR", "amount": "20.00", "type": "list", "customer_group": "vip"},
                  {"currency": "EUR", "amount": "21.50", "type": "list", "channel": "web"},
                  {"currency": "EUR", "amount": "19.00", "type": "list", "min_quantity": 10},
                  {"currency": "GBP", "amount": "9.995", "type": "list"},
                  {"currency": "EUR", "amount": "25.00", "type": "compare_at"}]
    sandbox.erp.add_item("TEE-1", prices=erp_prices)
    item_prices = [ItemPrice(currency=p["currency"], amount=Decimal(p["amount"]), type=p["type"],
                             customer_group=p.get("customer_group", ""), channel=p.get("channel", ""),
                             min_quantity=p.get("min_quantity", 1)) for p in erp_prices]
    ct_connection.settings = {"product_type": "default"}
    ct_connection.save()
    connector = connector_for(ct_connection)

    [result] = connector.publish_products([Product(key="tee-1", name="Tee", variants=(
        ProductVariant(sku="TEE-1", item_id="I-1", prices=tuple(item_prices)),))])
    assert result.ok, result.error

    run = check_run("prices")
    assert (run.status, run.found) == (DriftRun.Status.OK, 0), run.error
    assert run.summary["compared"] == {"commercetools": 5}

    # Someone edits the base price in the Merchant Center: drift, then "restore ERP price" puts it back.
    live = next(iter(ct.products.values()))
    live["masterVariant"]["prices"][0]["value"]["centAmount"] = 1999
    assert check_run("prices").found == 1
    assert ExceptionRecord.objects.filter(type_code="drift_price_mismatch", status="open").count() == 1

    connector.set_variant_prices("TEE-1", item_prices)

    fixed = check_run("prices")
    assert (fixed.status, fixed.resolved) == (DriftRun.Status.OK, 1)
    assert read(connector, "tee-1")["masterData"]["published"] is True


def test_restoring_prices_of_an_unknown_sku_says_so(client, ct):
    from integrations.connectors.base import NotFound

    with pytest.raises(NotFound):
        client.set_variant_prices("NOPE", [price("1.00")])


# --- the sandbox's own answers -------------------------------------------------------------------


def _token(sandbox):
    response = requests.post(f"{sandbox.url}/commercetools/auth/oauth/token", auth=("sandbox-client", "sandbox-secret"),
                             data={"grant_type": "client_credentials"})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_sandbox_answers_version_conflicts_and_validation_errors_as_commercetools_does(sandbox, ct):
    base = f"{sandbox.url}/commercetools/ledgerline-demo/products"
    headers = _token(sandbox)
    draft = {"key": "mug", "name": {"en": "Mug"}, "slug": {"en": "mug"},
             "productType": {"typeId": "product-type", "key": "default"},
             "masterVariant": {"sku": "MUG-1", "prices": [{"value": {"currencyCode": "EUR", "centAmount": 950}}]}}
    created = requests.post(base, json=draft, headers=headers)
    assert created.status_code == 201
    assert created.json()["masterData"]["published"] is False  # no publish: staged only

    duplicate = requests.post(base, json={**draft, "slug": {"en": "mug-2"}}, headers=headers).json()
    assert (duplicate["statusCode"], duplicate["errors"][0]["code"], duplicate["errors"][0]["field"]) == (
        400, "DuplicateField", "key")

    stale = requests.post(f"{base}/key=mug", json={"version": 7, "actions": [{"action": "publish"}]},
                          headers=headers).json()
    assert stale["statusCode"] == 409
    assert stale["errors"][0] == {"code": "ConcurrentModification", "currentVersion": 1, "message": (
        f"Object {created.json()['id']} has a different version than expected. Expected: 7 - Actual: 1.")}

    two_scopes = [{"value": {"currencyCode": "EUR", "centAmount": 950}}, {"value": {"currencyCode": "EUR",
                                                                                     "centAmount": 990}}]
    refused = requests.post(f"{base}/key=mug", json={"version": 1, "actions": [
        {"action": "setPrices", "sku": "MUG-1", "prices": two_scopes}]}, headers=headers).json()
    assert refused["errors"][0]["code"] == "DuplicatePriceScope"
    coarse = requests.post(f"{base}/key=mug", json={"version": 1, "actions": [{"action": "setPrices", "sku": "MUG-1",
        "prices": [{"value": {"type": "highPrecision", "currencyCode": "EUR", "preciseAmount": 95,
                              "fractionDigits": 1}}]}]}, headers=headers).json()
    assert (coarse["errors"][0]["code"], coarse["errors"][0]["field"]) == ("InvalidField", "prices[0].value.fractionDigits")
    unknown_variant = requests.post(f"{base}/key=mug", json={"version": 1, "actions": [
        {"action": "changeMasterVariant", "sku": "NOPE"}]}, headers=headers).json()
    assert unknown_variant["errors"][0]["code"] == "InvalidOperation"
    assert requests.post(f"{base}/key=mug", json={"version": 1, "actions": [{"action": "unpublish"}]},
                         headers=headers).json()["errors"][0]["code"] == "InvalidOperation"
    assert requests.get(f"{base}/key=mug", headers=headers).json()["version"] == 1  # nothing refused was applied


def test_a_new_master_variant_and_a_new_image_are_changed_in_place(client, ct):
    client.publish_products([tee()])
    black, white = tee().variants
    white = ProductVariant(sku=white.sku, item_id=white.item_id, attributes=white.attributes, prices=white.prices,
                           images=("https://img.example/tee-white.jpg",))
    reordered = Product(key="classic-tee", name="Classic tee", description="Heavy cotton.", tax_category="standard",
                        variants=(white, black))
    before = read(client)

    actions = cw.update_actions(before, reordered, cw._Options({}), {ct.channel_by_key("web")["id"]: "web"})
    [result] = client.publish_products([reordered])

    assert [a["action"] for a in actions] == ["changeMasterVariant", "addExternalImage", "publish"]
    assert result.ok, result.error
    current = read(client)["masterData"]["current"]
    assert (current["masterVariant"]["sku"], [v["sku"] for v in current["variants"]]) == ("TEE-WHT-M", ["TEE-BLK-M"])
    assert current["masterVariant"]["images"] == [{"url": "https://img.example/tee-white.jpg",
                                                   "dimensions": {"w": 0, "h": 0}}]
    assert result.variant_ids == {"TEE-BLK-M": f"{result.storefront_id}/1", "TEE-WHT-M": f"{result.storefront_id}/2"}
