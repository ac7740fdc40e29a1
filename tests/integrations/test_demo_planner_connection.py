"""The demo on another sandbox port (`manage.py demo --sandbox-port`): the planner's connection, made by
demo_seed before the port is known, points at the sandbox that is actually running, so the first pull
of recommendations finds the drafts."""
import pytest

from integrations.demo import demo_connections_seed
from integrations.models import Connection
from tests.factories import ConnectionFactory


@pytest.mark.django_db
def test_the_planner_connection_follows_the_demo_sandbox_port():
    ConnectionFactory(code="inventory-planner", kind="inventory_planner", name="Inventory Planner",
                      base_url="http://127.0.0.1:8100/inventory-planner/api/v1")
    demo_connections_seed("http://127.0.0.1:18651")
    assert Connection.objects.get(code="inventory-planner").base_url == "http://127.0.0.1:18651/inventory-planner/api/v1"
    demo_connections_seed()  # without a port (the mappings seed): left as it is
    assert Connection.objects.get(code="inventory-planner").base_url == "http://127.0.0.1:18651/inventory-planner/api/v1"
