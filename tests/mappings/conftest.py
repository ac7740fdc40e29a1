"""Fixtures for the mapping screens: signed-in clients and an ERP sandbox that knows a few codes."""
import pytest


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def ops_client(client, ops_user):
    client.force_login(ops_user)
    return client


@pytest.fixture
def erp(sandbox):
    """The ERP sandbox with depots MAIN and EAST and a few items; returns the vendor app."""
    sandbox.erp.add_depot("MAIN")
    sandbox.erp.add_depot("EAST")
    for code in ("TEE-BLK-M", "10042", "10043", "BOX-1", "LID-1"):
        sandbox.erp.add_item(code)
    return sandbox.erp


@pytest.fixture
def erp_down(erp):
    """The ERP answers every call with 503 (an outage)."""
    erp.outage = True
    return erp


HTMX = {"HTTP_HX_REQUEST": "true"}
