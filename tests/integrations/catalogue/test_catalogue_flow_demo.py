"""The demo's item master: after the demo's connections are made against the running sandboxes, the
first sync has read the ERP's catalogue, every storefront holds the complete items in its publish
queue (manual release) and CAP-RED as an e-commerce exception naming what it lacks."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import CatalogItem, CatalogPublication

pytestmark = pytest.mark.django_db


def test_the_demo_catalogue_waits_in_the_publish_queue_with_one_item_held(sandbox, q_sync):
    from integrations.demo import demo_connections_seed

    sandbox.erp.seed_demo()
    demo_connections_seed(sandbox.server.url)

    assert CatalogItem.objects.filter(product_key="SOCK-NVY").count() == 3
    pubs = CatalogPublication.objects.select_related("connection", "item")
    assert {p.connection.code for p in pubs} == {"shopify", "shopify-eu", "commercetools"}
    assert not pubs.filter(item__code="SHIPPING").exists()  # a charge, not a product
    assert set(pubs.exclude(item__code="CAP-RED").values_list("state", flat=True)) == {"ready"}, [
        (p.item.code, p.connection.code, p.missing) for p in pubs.filter(state="waiting")]
    held = pubs.filter(item__code="CAP-RED")
    assert {p.state for p in held} == {"waiting"} and all(p.missing == ["lead time", "tax code"] for p in held)
    records = ExceptionRecord.objects.filter(type_code="catalogue_item_incomplete")
    assert records.count() == 3 and {r.team for r in records} == {"ecommerce"}
    assert not sandbox.shopify.product_by_handle("sock-nvy")  # nothing pushed before someone releases it


def _demo(sandbox):
    """The demo as `manage.py demo` lays it: the storefronts seeded with their own products."""
    from integrations.demo import demo_connections_seed

    sandbox.erp.seed_demo()
    sandbox.shopify.seed_demo()
    sandbox.commercetools.seed_demo()
    demo_connections_seed(sandbox.server.url)


def _variant_ids(product):
    current = product["masterData"]["current"]
    return {v["sku"]: v["id"] for v in [current["masterVariant"], *current["variants"]]}


def _release(code):
    from integrations.flows.catalogue import release

    return release(list(CatalogPublication.objects.filter(connection__code=code).exclude(item__code="CAP-RED")))


def test_releasing_the_demo_to_commercetools_adopts_its_seeded_products(sandbox, q_sync):
    ct = sandbox.commercetools
    _demo(sandbox)
    seeded = {key: ct.product_by_key(key) for key in ("classic-tee", "enamel-mug", "hoodie")}

    outcome = _release("commercetools")

    assert outcome["released"] >= 8
    pubs = CatalogPublication.objects.filter(connection__code="commercetools").select_related("item")
    assert {p.item.code: p.state for p in pubs if p.state != "live"} == {"CAP-RED": "waiting"}, [
        (p.item.code, p.last_error) for p in pubs if p.last_error]
    # The ERP's TEE, MUG-001 and HOODIE-GRY are the project's own products, kept by id, key and variant id.
    for key, skus in (("classic-tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"]),
                      ("enamel-mug", ["MUG-001"]), ("hoodie", ["HOODIE-GRY-L"])):
        product = ct.product_by_key(key)
        assert product["id"] == seeded[key]["id"]
        assert {p.storefront_product_id for p in pubs if p.item.code in skus} == {product["id"]}
        assert _variant_ids(product) == _variant_ids(seeded[key]) and sorted(_variant_ids(product)) == sorted(skus)
    assert ct.product_by_key("classic-tee")["masterData"]["current"]["name"]["en"] == "T-shirt"
    assert ct.product_by_key("SOCK-NVY") and not ct.product_by_key("TEE") and not ct.product_by_key("MUG-001")
    assert not ExceptionRecord.objects.filter(type_code__in=["catalogue_grouping_conflict", "catalogue_publish_failed"],
                                              status__in=ExceptionRecord.ACTIVE_STATUSES).exists()


def test_releasing_the_demo_to_shopify_adopts_the_shops_products(sandbox, q_sync):
    shop = sandbox.shopify
    _demo(sandbox)
    seeded = {v["sku"]: v["product"] for v in shop.variants.values()}  # sku -> the shop's product number

    _release("shopify")

    pubs = CatalogPublication.objects.filter(connection__code="shopify").select_related("item")
    assert {p.item.code: p.state for p in pubs if p.state != "live"} == {"CAP-RED": "waiting"}, [
        (p.item.code, p.last_error) for p in pubs if p.last_error]
    for sku in ("TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M", "MUG-001", "HOODIE-GRY-L"):
        assert [v["sku"] for v in shop.variants.values()].count(sku) == 1, sku  # no second product selling it
    tee = {p.storefront_product_id for p in pubs if p.item.code.startswith("TEE-")}
    assert tee == {f"gid://shopify/Product/{seeded['TEE-BLK-M']}"}  # the shop's "Classic tee", kept
