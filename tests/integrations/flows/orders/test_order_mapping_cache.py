"""The order flow keeps the SKU, tax and depot mappings in Django's cache: a mapping someone changes
is what the very next order uses, and orders in between read no mapping rows again."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exceptions_queue.models import ExceptionRecord
from integrations.models import OrderLink
from mappings.models import DepotMapping, SkuMapping, TaxCodeMapping
from tests.payloads import deliver_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


def _post(client, capture, number: int, sku: str = "TEE-RED-M") -> dict:
    before = len(client.erp.sales_orders)
    deliver_shopify_webhook(client, shopify_order(number=number, lines=[{"sku": sku, "price": "20.00", "quantity": 1}]),
                            capture)
    return client.erp.sales_orders[before] if len(client.erp.sales_orders) > before else None


@pytest.fixture
def shop(client, order_setup):
    client.erp = order_setup.erp
    return client


def test_a_sku_mapping_changed_between_two_orders_is_used_by_the_next_one(
    shop, shopify_connection, django_capture_on_commit_callbacks
):
    mapping = SkuMapping.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M",
                                        erp_item_code="TEE-BLK-M")
    assert _post(shop, django_capture_on_commit_callbacks, 5001)["lines"][0]["item_code"] == "TEE-BLK-M"
    assert _post(shop, django_capture_on_commit_callbacks, 5002)["lines"][0]["item_code"] == "TEE-BLK-M"

    mapping.erp_item_code = "TEE-BLK-L"
    mapping.save()
    assert _post(shop, django_capture_on_commit_callbacks, 5003)["lines"][0]["item_code"] == "TEE-BLK-L"

    mapping.active = False  # deliberately unmapped: the next order is held, not posted to the old item
    mapping.save()
    assert _post(shop, django_capture_on_commit_callbacks, 5004) is None
    assert OrderLink.objects.get(order_number="#5004").state == OrderLink.State.FAILED
    assert ExceptionRecord.objects.get(type_code="unknown_sku").sku == "TEE-RED-M"

    mapping.delete()  # no row: the storefront SKU is the ERP item code, which the ERP lacks
    assert _post(shop, django_capture_on_commit_callbacks, 5005, sku="TEE-BLK-S")["lines"][0]["item_code"] == \
        "TEE-BLK-S"


def test_a_kit_component_changed_is_used_by_the_next_order(
    shop, shopify_connection, django_capture_on_commit_callbacks
):
    kit = SkuMapping.objects.create(connection=shopify_connection, storefront_sku="GIFT-SET", erp_item_code="")
    component = kit.components.create(erp_item_code="TEE-BLK-M", quantity=1)
    lines = _post(shop, django_capture_on_commit_callbacks, 5011, sku="GIFT-SET")["lines"]
    assert [line["item_code"] for line in lines] == ["TEE-BLK-M"]
    component.erp_item_code = "MUG-001"
    component.save()
    lines = _post(shop, django_capture_on_commit_callbacks, 5012, sku="GIFT-SET")["lines"]
    assert [line["item_code"] for line in lines] == ["MUG-001"]


def test_tax_and_depot_mappings_changed_are_used_by_the_next_order(
    shop, shopify_connection, django_capture_on_commit_callbacks
):
    first = _post(shop, django_capture_on_commit_callbacks, 5021, sku="TEE-BLK-M")
    assert (first["lines"][0]["tax_code"], first["depot"]) == ("T1", "MAIN")

    tax = TaxCodeMapping.objects.get(connection=shopify_connection, rate="0.2", country="GB")
    tax.erp_tax_code = "T1-NEW"
    tax.save()
    DepotMapping.objects.create(connection=shopify_connection, country="GB", depot_code="NORTH")
    second = _post(shop, django_capture_on_commit_callbacks, 5022, sku="TEE-BLK-M")
    assert (second["lines"][0]["tax_code"], second["depot"]) == ("T1-NEW", "NORTH")


def test_orders_in_between_read_no_mapping_rows(shop, shopify_connection, django_capture_on_commit_callbacks):
    SkuMapping.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="TEE-BLK-M")
    _post(shop, django_capture_on_commit_callbacks, 5031)
    with CaptureQueriesContext(connection) as statements:
        assert _post(shop, django_capture_on_commit_callbacks, 5032)["lines"][0]["item_code"] == "TEE-BLK-M"
    read = [q["sql"] for q in statements if 'FROM "mappings_' in q["sql"] and "history" not in q["sql"]]
    assert read == []
