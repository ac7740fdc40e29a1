"""/metrics: Prometheus text computed from the database on each scrape, for a scraper holding the
metrics token (HTTP basic auth) or a staff sign-in; anybody else is refused."""
import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from exceptions_queue.models import ExceptionRecord
from integrations.models import OrderLink, OutboundWrite
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-for-tests"


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN


def basic(password: str, user: str = "prometheus") -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def samples(response) -> dict:
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_it_refuses_anonymous_callers(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Basic realm="Ledgerline metrics"')
    assert b"ledgerline_" not in response.content


def test_it_refuses_a_wrong_token_and_a_signed_in_non_staff_user(client, ops_user):
    assert client.get("/metrics", **basic("not-the-token")).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic %%%").status_code == 401
    client.force_login(ops_user)
    assert client.get("/metrics").status_code == 401


def test_it_refuses_everyone_but_staff_when_no_token_is_configured(client, settings, ops_user):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", **basic("")).status_code == 401
    ops_user.is_staff = True
    ops_user.save()
    client.force_login(ops_user)
    assert client.get("/metrics").status_code == 200


def test_it_exposes_flow_backlogs_exceptions_and_requests(client):
    shop = ConnectionFactory(code="shopify", kind="shopify")
    now = timezone.now()
    OrderLink.objects.bulk_create([OrderLink(connection=shop, storefront_order_id=str(i), state="received")
                                   for i in range(3)])
    OrderLink.objects.create(connection=shop, storefront_order_id="p", state="posted", posted_at=now)
    ExceptionRecord.objects.create(type_code="unknown_sku", team="ops", key="k", fingerprint="f", title="t",
                                   message="m", due_at=now - timedelta(hours=1))
    OutboundWrite.objects.create(system="rest_erp", action="create_sales_order", external_reference="a",
                                 status="succeeded", started_at=now - timedelta(seconds=2), finished_at=now)
    OutboundWrite.objects.create(system="rest_erp", action="create_sales_order", external_reference="b",
                                 status="failed", error="ERP rate limit: slow down (429)",
                                 started_at=now - timedelta(seconds=1), finished_at=now)
    OutboundWrite.objects.create(system="shopify", action="fulfillment_create", external_reference="c",
                                 status="succeeded", started_at=now)
    response = client.get("/metrics", **basic(TOKEN))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=")
    got = samples(response)
    assert got[("ledgerline_flow_backlog", (("flow", "orders"),))] == 3
    assert got[("ledgerline_flow_done_total", (("flow", "orders"),))] == 1
    assert got[("ledgerline_flow_last_success_timestamp_seconds", (("flow", "orders"),))] == pytest.approx(now.timestamp())
    assert got[("ledgerline_exceptions_open", (("team", "ops"), ("type", "unknown_sku")))] == 1
    assert got[("ledgerline_exceptions_overdue", (("team", "ops"),))] == 1
    requests = "ledgerline_outbound_requests_total"
    assert got[(requests, (("side", "erp"), ("status", "succeeded"), ("system", "rest_erp")))] == 1
    assert got[(requests, (("side", "erp"), ("status", "failed"), ("system", "rest_erp")))] == 1
    assert got[(requests, (("side", "storefront"), ("status", "succeeded"), ("system", "shopify")))] == 1
    assert got[("ledgerline_outbound_rate_limited_total", (("system", "rest_erp"),))] == 1
    assert got[("ledgerline_outbound_request_duration_seconds_count", (("system", "rest_erp"),))] == 2
    assert got[("ledgerline_outbound_request_duration_seconds_sum", (("system", "rest_erp"),))] == pytest.approx(3.0)
    assert got[("ledgerline_inbound_events", (("status", "pending"),))] == 0


def test_a_bearer_token_works_too(client):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_it_rejects_post(client):
    assert client.post("/metrics", **basic(TOKEN)).status_code == 405
