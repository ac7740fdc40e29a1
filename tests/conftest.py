"""Shared fixtures: the three-plus fixed users, the sandbox systems over real HTTP on loopback."""
import os

import pytest
from django.conf import settings

from integrations.sandbox.server import start_sandbox
from tests.factories import ConnectionFactory, UserFactory

# The settings saw pytest's PYTEST_VERSION and run in test mode; processes the tests start run so too.
os.environ["LEDGERLINE_MODE"] = "test"


@pytest.fixture(autouse=True)
def _fresh_connection_cache():
    """Each web process keeps connections a few seconds; a test's rolled-back rows must not outlive it."""
    yield
    from integrations.inbox.webhooks import connection_cache_clear

    connection_cache_clear()


@pytest.fixture
def ops_user(db):
    return UserFactory(username="olivia-ops", roles=["ops"])


@pytest.fixture
def finance_user(db):
    return UserFactory(username="fred-finance", roles=["finance"])


@pytest.fixture
def ecommerce_user(db):
    return UserFactory(username="erin-ecommerce", roles=["ecommerce"])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada-admin", roles=["admin"])


@pytest.fixture
def outsider(db):
    """Signed in, but in no team: may read, may not act."""
    return UserFactory(username="oscar-outsider")


@pytest.fixture
def shopify_connection(db):
    return ConnectionFactory(code="shopify", kind="shopify", name="Shopify store")


@pytest.fixture
def ct_connection(db):
    return ConnectionFactory(code="commercetools", kind="commercetools", name="commercetools shop")


@pytest.fixture(scope="session")
def sandbox_server():
    """The vendor sandboxes over real HTTP on 127.0.0.1, for the whole session (state reset per test)."""
    server = start_sandbox(erp_rate_limit=0)
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """Points every connector at the running sandbox and gives tests each vendor's state.

    `sandbox.erp`, `sandbox.prima`, `sandbox.shopify`, `sandbox.commercetools` are the vendor apps.
    """
    for app in sandbox_server.apps.values():
        app.reset()
    base = sandbox_server.url
    settings.SANDBOX_URL = base
    settings.SHOPIFY = {**settings.SHOPIFY, "shop_url": f"{base}/shopify"}
    settings.COMMERCETOOLS = {
        **settings.COMMERCETOOLS,
        "api_url": f"{base}/commercetools",
        "auth_url": f"{base}/commercetools/auth",
    }
    settings.ERP = {
        **settings.ERP,
        "base_url": f"{base}/erp/api/v1",
        "prima_url": f"{base}/prima",
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }

    class Handle:
        url = base
        server = sandbox_server

        def __getattr__(self, name):
            return sandbox_server.apps[f"/{name}"]

    return Handle()
