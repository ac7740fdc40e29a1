"""The commercetools publisher against the `commercetools` package's own emulator (third party), for the
calls it models: a ProductDraft with centPrecision prices scoped by currency and country with validity
dates, the batch read `GET /products?where=key in (…)`, `GET /products/key=`, the update actions setAttribute, addVariant, setPrices and publish, and a
409 ConcurrentModification for a stale version. The drafts and actions are also loaded with the SDK's
own schemas (ProductDraftSchema, ProductUpdateSchema), so their shape is the SDK's, not only ours.
Adoption too, as far as the emulator goes: `product-projections?staged=true` answers (it ignores the
`where` predicate and returns every product, so the publisher's own check of the SKUs it asked for is
what holds there), for a product made unpublished with the same name (it models neither changeName
nor setKey: a keyless product, or one to rename, is tested against our sandbox only,
test_commercetools_catalogue_adopt.py, as is the DuplicateField race at create).

What the emulator does not model, tested against our sandbox only (test_commercetools_catalogue.py):
price tiers (creating a price with tiers raises inside it), highPrecision money (stored with a null
centAmount), references by key (a customer group, channel, product type or tax category given by key
is stored with a null id), distinct variant ids (every variant gets id 1, so variant_ids cannot be
checked here), images, changeName / setDescription / setTaxCategory / setSku / addExternalImage /
unpublish, and staged data (a product created with publish: true has staged = null, so
`product-projections?staged=true` finds nothing and "restore ERP price" cannot find the SKU).
"""
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests_mock
from commercetools.platform.models._schemas.product import ProductDraftSchema, ProductUpdateSchema
from commercetools.testing import backend_mocker

from integrations.connectors.catalogue import ItemPrice, Product, ProductVariant
from integrations.connectors.commercetools import CommercetoolsClient
from integrations.connectors.commercetools import catalogue_write as cw

API_URL = "https://api.europe-west1.gcp.commercetools.com"
AUTH_URL = "https://auth.europe-west1.gcp.commercetools.com"
PROJECT = "ledgerline-emu"
JAN = datetime(2027, 1, 1, tzinfo=timezone.utc)
FEB = datetime(2027, 2, 1, tzinfo=timezone.utc)


@pytest.fixture
def client():
    with requests_mock.Mocker(real_http=False), backend_mocker():
        client = CommercetoolsClient(API_URL, AUTH_URL, PROJECT, "emu-client", "emu-secret",
                                     scope=f"manage_project:{PROJECT}", max_attempts=1, sleep=lambda _: None,
                                     connection_settings={"product_type": "apparel"})
        client.api("POST", "product-types", json={"name": "Apparel", "description": "Apparel", "key": "apparel"})
        yield client


def tee(*, black="22.99", colour="black", extra=()):
    return Product(key="classic-tee", name="Classic tee", variants=(
        ProductVariant(sku="TEE-BLK-M", item_id="I-100", attributes={"colour": colour, "size": "M"}, prices=(
            ItemPrice("EUR", Decimal(black)), ItemPrice("GBP", Decimal("18.99"), country="GB"),
            ItemPrice("EUR", Decimal("19.99"), country="DE", valid_from=JAN, valid_until=FEB))),
        ProductVariant(sku="TEE-WHT-M", item_id="I-101", prices=(ItemPrice("EUR", Decimal("21.00")),)),
        *extra))


def prices_of(variant):
    return sorted((p["value"]["currencyCode"], p["value"]["centAmount"], p.get("country"), p.get("validFrom"),
                   p.get("validUntil")) for p in variant.get("prices") or ())


def test_drafts_and_actions_load_with_the_sdks_own_schemas():
    options = cw._Options({"product_type": "apparel"})
    ProductDraftSchema().load(cw.product_draft(tee(), options))
    existing = {"id": "p-1", "version": 3, "masterData": {"published": True, "hasStagedChanges": False, "staged": {
        "name": {"en": "Old"}, "masterVariant": {"id": 1, "sku": "TEE-BLK-M", "key": "I-100", "attributes": []},
        "variants": []}}}
    actions = cw.update_actions(existing, tee(), options, {})
    assert [a["action"] for a in actions] == ["changeName", "addVariant", "setAttribute", "setAttribute", "setPrices",
                                              "publish"]
    ProductUpdateSchema().load({"version": 3, "actions": actions})


def test_a_new_product_arrives_with_its_scoped_and_dated_prices(client):
    [result] = client.publish_products([tee()])

    assert result.ok and result.created, result.error
    product = client.api("GET", "products/key=classic-tee")
    assert product["id"] == result.storefront_id and product["masterData"]["published"] is True
    current = product["masterData"]["current"]
    assert current["name"] == {"en": "Classic tee"} and current["slug"] == {"en": "classic-tee"}
    black, white = current["masterVariant"], current["variants"][0]
    assert (black["sku"], black["key"], white["sku"]) == ("TEE-BLK-M", "I-100", "TEE-WHT-M")
    assert black["attributes"] == [{"name": "colour", "value": "black"}, {"name": "size", "value": "M"}]
    assert prices_of(black) == [("EUR", 1999, "DE", "2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"),
                                ("EUR", 2299, None, None, None), ("GBP", 1899, "GB", None, None)]
    assert prices_of(white) == [("EUR", 2100, None, None, None)]


def test_publishing_twice_creates_nothing_and_a_change_updates_the_one_product(client):
    client.publish_products([tee()])
    [again] = client.publish_products([tee()])
    assert again.ok and not again.created
    assert client.api("GET", "products/key=classic-tee")["version"] == 1  # nothing was sent

    red = ProductVariant(sku="TEE-RED-M", item_id="I-102", prices=(ItemPrice("EUR", Decimal("24.00")),))
    [changed] = client.publish_products([tee(black="23.49", colour="navy", extra=(red,))])

    assert changed.ok and not changed.created, changed.error
    assert client.api("GET", "products")["total"] == 1
    current = client.api("GET", "products/key=classic-tee")["masterData"]["current"]
    assert {"name": "colour", "value": "navy"} in current["masterVariant"]["attributes"]
    assert ("EUR", 2349, None, None, None) in prices_of(current["masterVariant"])
    assert [(v["sku"], prices_of(v)) for v in current["variants"]] == [
        ("TEE-WHT-M", [("EUR", 2100, None, None, None)]), ("TEE-RED-M", [("EUR", 2400, None, None, None)])]


def test_a_version_race_meets_the_emulators_409_and_is_retried(client, monkeypatch):
    client.publish_products([tee()])
    original = cw.CatalogueWriter.read_many
    raced = []

    def read_then_someone_else_writes(self, keys):
        found = original(self, keys)
        product = found["classic-tee"]  # another writer changes the product right after our read
        raced.append(product["version"])
        self.client.api("POST", f"products/{product['id']}", json={"version": product["version"], "actions": [
            {"action": "setAttribute", "variantId": 1, "name": "season", "value": "summer"}]})
        return found

    monkeypatch.setattr(cw.CatalogueWriter, "read_many", read_then_someone_else_writes)

    [result] = client.publish_products([tee(black="25.00")])

    assert result.ok, result.error
    assert raced == [1]
    product = client.api("GET", "products/key=classic-tee")
    assert product["version"] == 3  # theirs, then ours read again at version 2
    current = product["masterData"]["current"]
    assert ("EUR", 2500, None, None, None) in prices_of(current["masterVariant"])
    assert {"name": "season", "value": "summer"} in current["masterVariant"]["attributes"]  # theirs kept too


def _made_by_hand(client, skus):
    """A product someone made in the project, unpublished (the emulator keeps staged data only then)."""
    return client.api("POST", "products", json={
        "key": "by-hand", "productType": {"typeId": "product-type", "key": "apparel"}, "name": {"en": "Classic tee"},
        "slug": {"en": "by-hand"}, "masterVariant": {"sku": skus[0], "attributes": []},
        "variants": [{"sku": s, "attributes": []} for s in skus[1:]],  # (its setAttribute needs the list)
        "publish": False})


def test_a_product_made_by_hand_with_the_skus_is_adopted_not_duplicated(client):
    made = _made_by_hand(client, ["TEE-BLK-M", "TEE-WHT-M"])

    [result] = client.publish_products([tee()])

    assert result.ok and result.adopted and not result.created, result.error
    assert result.storefront_id == made["id"]
    product = client.api("GET", f"products/{made['id']}")
    assert product["key"] == "by-hand"  # its own key is kept
    current = product["masterData"]["current"]
    assert ("EUR", 2299, None, None, None) in prices_of(current["masterVariant"])
    assert client.api("GET", "products")["total"] == 1


def test_skus_beside_one_not_ours_are_a_conflict_with_nothing_written(client):
    made = _made_by_hand(client, ["TEE-BLK-M", "TEE-GRN-M"])

    [result] = client.publish_products([tee()])

    assert (result.ok, result.conflict) == (False, True)
    assert "product by-hand" in result.error and "TEE-BLK-M, TEE-GRN-M" in result.error
    assert client.api("GET", f"products/{made['id']}")["version"] == made["version"]
    assert client.api("GET", "products")["total"] == 1
