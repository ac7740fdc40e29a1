"""After a save: how many open exceptions the row affects, and retrying them from the row (queued; the
fragment polls the job and shows each exception's outcome)."""
from django.urls import reverse

from exceptions_queue.models import BulkJob
from exceptions_queue.services import bulk_job_run

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


def test_retry_from_the_row_shows_each_exception_as_it_is_retried(admin_client, shopify_connection,
                                                                  django_capture_on_commit_callbacks):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    fixed = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="TEE-RED-M", title="Order #1 failed")
    still = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="TEE-RED-M", title="Order #2 failed",
                                   context={"fixable": False}, last_error="ERP item 10042 is blocked")
    other = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="MUG-1")
    RETRIED.clear()
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(reverse("mapping-retry", args=["skus", row.pk]), **HTMX)
    assert len(queued) == 1  # one django-q2 task for the whole retry, queued after the commit
    html = response.content.decode()
    assert response["HX-Trigger"] == "exceptionsChanged"
    job = BulkJob.objects.get()
    assert sorted(job.exception_ids) == sorted([fixed.pk, still.pk])
    # while the task has not run, each exception says it is being retried and the fragment polls
    assert html.count("being retried…") == 2
    poll = reverse("mapping-affected", args=["skus", row.pk]) + f"?job={job.pk}"
    assert f'hx-get="{poll}" hx-trigger="every 2s"' in html

    bulk_job_run(job_id=job.pk)  # what the django-q2 worker does
    response = admin_client.get(poll, **HTMX)
    html = response.content.decode()
    assert "Retry finished:</strong> 1 resolved" in html and "1 still failing" in html
    assert f'data-exception="{fixed.pk}" data-state="resolved"' in html
    assert f'data-exception="{still.pk}" data-state="failing"' in html
    assert "ERP item 10042 is blocked" in html
    assert "hx-trigger" not in html  # finished: the polling stops
    assert response["HX-Trigger"] == "exceptionsChanged"
    assert "1 open exception affected by this row." in html  # and the one still failing can be retried again
    assert sorted(RETRIED) == sorted([fixed.pk, still.pk])
    fixed.refresh_from_db(); still.refresh_from_db(); other.refresh_from_db()
    assert (fixed.status, still.status, other.status) == ("resolved", "open", "open")
    assert fixed.activity.filter(action="retried").get().actor.username == "ada-admin"


def test_retry_without_htmx_lands_on_the_row_page_following_the_job(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    exc = ExceptionRecordFactory(type_code=TEST_TYPE.code, sku="TEE-RED-M", title="Order #1 failed")
    response = admin_client.post(reverse("mapping-retry", args=["skus", row.pk]))
    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("mapping-detail", args=["skus", row.pk]) + f"?job={job.pk}"
    page = admin_client.get(response["Location"]).content.decode()
    assert page.count("<h1") == 1
    assert f'data-exception="{exc.pk}" data-state="retrying"' in page
    assert "Retrying 1 exception" in page


def test_the_poll_answers_a_page_without_htmx_and_refuses_a_bad_job_number(admin_client, shopify_connection):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    url = reverse("mapping-affected", args=["skus", row.pk])
    for bad in ("abc", "²", "-1", "1.5"):
        assert admin_client.get(url + f"?job={bad}", **HTMX).status_code == 400, bad
    assert admin_client.get(url + "?job=99999999999999999999999", **HTMX).status_code == 400
    assert admin_client.get(url + "?job=424242", **HTMX).status_code == 404
    response = admin_client.get(url)
    assert response.status_code == 302 and response["Location"] == reverse("mapping-detail", args=["skus", row.pk])
    assert admin_client.post(url, **HTMX).status_code == 405


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
