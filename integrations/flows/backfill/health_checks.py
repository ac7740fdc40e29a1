"""Each connection's health lines stored with their time, so the connections list shows them without
calling a vendor: refreshed by "Check now", after a repair, and every 15 minutes by the schedule."""
from __future__ import annotations

import logging
from dataclasses import asdict

from django.utils import timezone

from integrations.models import Connection, ConnectionHealthCheck
from integrations.onboarding.health import HealthLine, connection_health, worst

log = logging.getLogger("ledgerline.connections")


def connection_health_refresh(connection: Connection) -> ConnectionHealthCheck:
    lines = connection_health(connection)
    check, _ = ConnectionHealthCheck.objects.update_or_create(
        connection=connection,
        defaults={"status": worst(lines), "lines": [asdict(line) for line in lines], "checked_at": timezone.now()})
    return check


def stored_lines(check: ConnectionHealthCheck | None) -> list[HealthLine]:
    return [HealthLine(**line) for line in (check.lines if check else [])]


def connections_health_refresh_all() -> int:
    checked = 0
    for connection in Connection.objects.filter(active=True):
        try:
            connection_health_refresh(connection)
            checked += 1
        except Exception:  # one connection never stops the others; its line stays as it was
            log.exception("health check of %s failed", connection.code)
    return checked
