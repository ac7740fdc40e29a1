"""After a save: how many open exceptions the row affects, and retrying them from the row."""
from django.urls import reverse

from exceptions_queue.registry import ExceptionType, register
from mappings.services import affected_exceptions
from tests.factories import (
    DepotMappingFactory, ExceptionRecordFactory, SkuMappingFactory, TaxCodeMappingFactory,
)

from .conftest import HTMX

RETRIED = []


def succeed_if_mapped(record) -> bool:
    RETRIED.append(record.pk)
    return record.context.get("fixable", True)


TEST_TYPE = register(ExceptionType(
    code="test_mapping_sku_failure", team="ecommerce", severity="high", title="SKU {sku} failed",
    runbook="test only", retry_handler="tests.mappings.test_affected_exceptions.succeed_if_mapped",
))


def test_retry_from_the_row_resolves_what_now_succeeds(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    fixed = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="TEE-RED-M")
    still = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="TEE-RED-M", context={"fixable": False})
    other = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="MUG-1")
    RETRIED.clear()
    response = admin_client.post(reverse("mapping-retry", args=["skus", row.pk]), **HTMX)
    html = response.content.decode()
    assert "Retried: 1 succeeded, 1 still failing." in html
    assert "1 open exception affected by this row." in html
    assert response["HX-Trigger"] == "exceptionsChanged"
    assert sorted(RETRIED) == sorted([fixed.pk, still.pk])
    fixed.refresh_from_db(); still.refresh_from_db(); other.refresh_from_db()
    assert (fixed.status, still.status, other.status) == ("resolved", "open", "open")
    assert fixed.activity.filter(action="retried").get().actor.username == "ada-admin"


def test_depot_rows_affect_depot_exceptions_for_their_country(shopify_connection):
    row = DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="MAIN")
    gb = ExceptionRecordFactory(type_code="invalid_depot", sku="", context={"country": "GB", "depot": "CHD"})
    fr = ExceptionRecordFactory(type_code="invalid_depot", sku="", context={"country": "FR", "depot": "CHD"})
    stale = ExceptionRecordFactory(type_code="mapping_stale_depot", sku="", context={"depot": "MAIN"})
    assert set(affected_exceptions(row)) == {gb, stale}
    assert fr not in affected_exceptions(row)


def test_tax_rows_affect_missing_tax_mapping_exceptions(shopify_connection):
    row = TaxCodeMappingFactory(connection=shopify_connection, country="GB", rate="0.2", erp_tax_code="S20")
    gb = ExceptionRecordFactory(type_code="missing_tax_mapping", sku="", context={"country": "GB", "rate": "0.2"})
    ExceptionRecordFactory(type_code="missing_tax_mapping", sku="", context={"country": "DE"})
    ExceptionRecordFactory(type_code="missing_tax_mapping", sku="", status="resolved", context={"country": "GB"})
    assert list(affected_exceptions(row)) == [gb]
