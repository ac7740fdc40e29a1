"""Test-only exception types (one per team) whose retry succeeds once the test says the cause is fixed."""
from datetime import timedelta

import pytest
from django.test import Client

from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team
from exceptions_queue.services import exception_raise

FIXED: set[str] = set()  # fingerprints whose cause a test has fixed


def retry_when_fixed(record) -> bool:
    return record.fingerprint in FIXED


TYPES = {
    "t_ops": ExceptionType(
        code="t_ops", team=Team.OPS, severity=Severity.HIGH, system="erp",
        title="Depot {depot} rejected the order", runbook="Check the depot mapping, then retry.",
        retry_handler="tests.exceptions_queue.conftest.retry_when_fixed", sla=timedelta(hours=2),
    ),
    "t_finance": ExceptionType(
        code="t_finance", team=Team.FINANCE, severity=Severity.MEDIUM, system="shopify",
        title="Payout {payout} does not balance", runbook="Compare the payout lines with the ledger.",
        retry_handler="tests.exceptions_queue.conftest.retry_when_fixed", sla=timedelta(days=1),
    ),
    "t_ecommerce": ExceptionType(
        code="t_ecommerce", team=Team.ECOMMERCE, severity=Severity.LOW,
        title="Product {sku} has no price", runbook="Set the price in the ERP.", sla=timedelta(days=2),
    ),
}


@pytest.fixture(autouse=True)
def exc_types():
    for t in TYPES.values():
        registry.register(t)
    FIXED.clear()
    yield TYPES
    FIXED.clear()
    for code in TYPES:
        registry.unregister(code)


@pytest.fixture
def q_sync(settings, monkeypatch, transactional_db):
    """Queued tasks run inline (these tests are not about the queue itself); real commits, so the
    tasks queued with transaction.on_commit run as they would in production."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 reads the setting once, at import


@pytest.fixture
def raise_exc(db):
    """raise_exc("t_ops", n=3, cause="D1") opens n exceptions with one cause (one per order key)."""
    counter = {"n": 0}

    def _raise(code="t_ops", n=1, cause="D1", order=None, sku="", **context):
        records = []
        for _ in range(n):
            counter["n"] += 1
            records.append(exception_raise(
                exc_type=TYPES[code], key=f"k{counter['n']}:{cause}", fingerprint=cause,
                message=f"{code} failed for {cause}", context={"depot": cause, "payout": cause, "sku": sku or cause, **context},
                order=order, sku=sku, last_error="422 Unprocessable Entity",
            ))
        return records if n > 1 else records[0]

    return _raise


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


HTMX = {"HTTP_HX_REQUEST": "true"}
