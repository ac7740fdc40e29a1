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
