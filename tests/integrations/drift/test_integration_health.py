"""The integration-health check: webhook subscriptions missing (from the connection's stored health
check, read over HTTP from the sandbox shop), events waiting, a poll cursor that stopped, a task that
keeps failing, credentials about to expire; each raised once and cleared when put right."""
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Failure

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.flows.backfill.health_checks import connection_health_refresh
from integrations.models import DriftRun, InboundEvent, PollCursor
from integrations.onboarding.shopify_oauth import shopify_connect_client_credentials
from integrations.onboarding.subscriptions import shopify_subscriptions_repair

pytestmark = pytest.mark.django_db


def _open(type_code):
    return ExceptionRecord.objects.filter(type_code=type_code, status="open")


def test_missing_webhook_subscriptions_are_raised_and_cleared_after_the_repair(sandbox, settings):
    settings.SITE_URL = "http://localhost:8000"
    shop = shopify_connect_client_credentials(shop=f"{sandbox.url}/shopify", code="demo-shop").connection
    connection_health_refresh(shop)  # what the 15-minute schedule stores

    run = check_run("integration_health")
    assert run.status == DriftRun.Status.FINDINGS, run.error
    missing = _open("drift_webhooks_unhealthy")
    assert missing.count() == run.summary["by_kind"]["webhooks"] > 0
    assert missing.first().team == "ecommerce"
    assert "orders/create is missing" in " ".join(missing.values_list("message", flat=True))
    assert check_run("integration_health").raised == 0

    shopify_subscriptions_repair(shop)
    connection_health_refresh(shop)
    check_run("integration_health")
    assert not _open("drift_webhooks_unhealthy").exists()


def test_waiting_events_a_stopped_cursor_a_failing_task_and_expiring_credentials(shopify_connection, ct_connection):
    old = timezone.now() - timedelta(hours=2)
    for n in range(3):
        InboundEvent.objects.create(connection=shopify_connection, topic="orders/create", external_id=f"w{n}",
                                    payload={}, received_at=old)
    InboundEvent.objects.create(connection=shopify_connection, topic="orders/create", external_id="fresh", payload={})
    cursor = PollCursor.objects.create(connection=ct_connection, resource="orders", last_modified_at="2026-01-01T00:00:00Z")
    PollCursor.objects.filter(pk=cursor.pk).update(updated_at=old)
    for n in range(3):
        Failure.objects.create(id=f"f{n}", name=f"t{n}", func="integrations.tasks.post_order", args=(1,), kwargs={},
                               result="ERP unreachable", started=old, stopped=timezone.now() - timedelta(minutes=n),
                               success=False)
    ct_connection.settings = {"credentials_expire_at": (timezone.now() + timedelta(days=3)).date().isoformat()}
    ct_connection.save()

    run = check_run("integration_health")
    assert run.summary["by_kind"] == {"expiry": 1, "waiting": 1, "cursor": 1, "task": 1}, run.error
    assert "3 events from Shopify store have waited more than 15 minutes" in _open("drift_events_waiting").get().message
    assert _open("drift_cursor_stale").get().team == "ops"
    assert "failed 3 times" in _open("drift_task_failing").get().message
    assert "credentials expire on" in _open("drift_credential_expiring").get().message
    assert check_run("integration_health").raised == 0

    InboundEvent.objects.update(status=InboundEvent.Status.DONE)
    PollCursor.objects.update(updated_at=timezone.now())
    Failure.objects.all().delete()
    ct_connection.settings = {}
    ct_connection.save()
    cleared = check_run("integration_health")
    assert (cleared.status, cleared.resolved) == (DriftRun.Status.OK, 4)
