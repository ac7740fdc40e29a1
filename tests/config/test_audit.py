"""The integration audit (page for admins, and `manage.py integration_audit`): it finds gaps planted in
Ledgerline's own records, each with a severity and the fix, exports Markdown and HTML, and never calls
a vendor while it is drawn."""
from datetime import timedelta
from io import StringIO

import pytest
import requests_mock
from django.core.management import call_command
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from integrations.models import ConnectionHealthCheck, PollCursor
from integrations.models.inventory import StorefrontLocation
from tests.factories import ConnectionFactory, LocationMappingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(db):
    """A shop on an unsupported API version, missing a scope and a subscription, with an unmapped SKU
    and location, an unmapped tax rate, a stopped poller and an exception past its SLA."""
    now = timezone.now()
    shop = ConnectionFactory(code="shopify-eu", kind="shopify", settings={"api_version": "2025-01"})
    ct = ConnectionFactory(code="commercetools", kind="commercetools")
    ConnectionHealthCheck.objects.create(connection=shop, status="error", checked_at=now, lines=[
        {"check": "auth", "status": "ok", "message": "Access token valid", "repairable": False},
        {"check": "scopes", "status": "error", "message": "read_fulfillments is not granted", "repairable": False},
        {"check": "subscriptions", "status": "error", "repairable": True,
         "message": "Webhook subscription refunds/create is missing: its events do not arrive"},
    ])
    for i in range(3):
        ExceptionRecord.objects.create(type_code="unknown_sku", team="ops", key=f"unknown_sku:{i}:TEE-RED-M",
                                       fingerprint="unknown_sku:TEE-RED-M", title="SKU TEE-RED-M has no ERP item",
                                       message="m", sku="TEE-RED-M")
    ExceptionRecord.objects.create(type_code="missing_tax_mapping", team="finance", key="tax:0.07:DE",
                                   fingerprint="missing_tax_mapping:0.07:DE", title="No ERP tax code for 7% in DE",
                                   message="m", due_at=now - timedelta(hours=3))
    StorefrontLocation.objects.create(connection=shop, location="gid://shopify/Location/77", name="Pop-up store")
    StorefrontLocation.objects.create(connection=shop, location="gid://shopify/Location/1", name="Main warehouse")
    LocationMappingFactory(connection=shop, storefront_location="1", erp_warehouse="MAIN")
    PollCursor.objects.create(connection=ct, resource="orders", last_modified_at="2026-11-30T10:00:00.000Z")
    PollCursor.objects.filter(connection=ct).update(updated_at=now - timedelta(hours=6))
    return shop


def row(html: str, area: str, text: str) -> str:
    for part in html.split("<tr ")[1:]:
        if f'data-area="{area}"' in part and text in part:
            return part.split("</tr>", 1)[0]
    raise AssertionError(f"no {area} row with {text!r}")


def test_it_finds_the_planted_gaps_with_severity_and_fix(client, admin_user, estate):
    client.force_login(admin_user)
    with requests_mock.Mocker():  # any call to a vendor would fail here: the audit reads stored records
        html = client.get("/audit/").content.decode()
    sku = row(html, "SKUs without mappings", "SKU TEE-RED-M")
    assert 'data-severity="high"' in sku and "3 open exceptions" in sku and "Mappings → SKUs" in sku
    tax = row(html, "Tax rates without codes", "7% in DE")
    assert "Mappings → Tax codes" in tax
    location = row(html, "Locations without depots", "Pop-up store")
    assert "gid://shopify/Location/77" in location
    assert "Main warehouse" not in html.split('id="audit"', 1)[1]  # mapped by its bare number
    assert "read_fulfillments is not granted" in row(html, "Scopes missing", "shopify-eu")
    assert "Repair the subscriptions" in row(html, "Webhook subscriptions", "refunds/create")
    version = row(html, "API versions", "shopify-eu")
    assert 'data-severity="high"' in version and "end of support 2026-01-01" in version
    cursor = row(html, "Stale cursors", "commercetools: orders")
    assert 'data-severity="high"' in cursor
    assert "1 open past their SLA" in row(html, "Exceptions past their SLA", "finance: missing_tax_mapping")
    assert "No health check stored yet" in row(html, "Connection health", "commercetools")


def test_it_exports_markdown_and_html(client, admin_user, estate):
    client.force_login(admin_user)
    md = client.get("/audit/?format=md")
    assert md["Content-Type"] == "text/markdown; charset=utf-8"
    text = md.content.decode()
    assert text.startswith("# Integration audit")
    assert ("| high | SKUs without mappings | [SKU TEE-RED-M](http://testserver/exceptions/group/"
            "?fingerprint=unknown_sku:TEE-RED-M) |") in text
    assert "| high | Stale cursors | [commercetools: orders](http://testserver/connections/) |" in text
    report = client.get("/audit/?format=html")
    assert report["Content-Disposition"] == 'attachment; filename="integration-audit.html"'
    assert "<h1>Integration audit</h1>" in report.content.decode() and "Pop-up store" in report.content.decode()


def test_the_command_writes_the_report(estate, tmp_path, settings):
    settings.SITE_URL = "https://ledgerline.example.com"
    out = StringIO()
    call_command("integration_audit", "--format", "md", "--output", str(tmp_path / "audit.md"), stdout=out)
    text = (tmp_path / "audit.md").read_text()
    assert "(https://ledgerline.example.com/exceptions/group/?fingerprint=unknown_sku:TEE-RED-M)" in text
    assert "Wrote the integration audit to" in out.getvalue() and "high" in out.getvalue()
    html = StringIO()
    call_command("integration_audit", "--format", "html", stdout=html)
    assert "<table" in html.getvalue() and "Webhook subscriptions" in html.getvalue()


def test_a_clean_estate_has_no_high_findings(client, admin_user):
    ConnectionFactory(code="shopify", kind="shopify", settings={"api_version": "2026-04"})
    client.force_login(admin_user)
    html = client.get("/audit/").content.decode()
    assert 'data-severity="high"' not in html


def test_it_is_for_admins_only(client, ops_user):
    client.force_login(ops_user)
    assert client.get("/audit/").status_code == 403


def test_it_rejects_post(client, admin_user):
    client.force_login(admin_user)
    assert client.post("/audit/").status_code == 405


def test_it_sends_a_stranger_to_sign_in(client):
    response = client.get("/audit/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
