"""The sandbox Inventory Planner account with drafts to review, against the sandbox ERP's catalogue."""
import pytest

from tests.factories import ConnectionFactory


@pytest.fixture
def planner(erp_ready):
    return erp_ready.server.apps["/inventory-planner"]


@pytest.fixture
def planner_connection(planner, sandbox, db):
    return ConnectionFactory(code="ip", kind="inventory_planner", name="Inventory Planner",
                             base_url=f"{sandbox.url}/inventory-planner/api/v1",
                             credentials={"api_key": "sandbox-ip-key"},
                             settings={"account_id": "a1000", "backoff_base": 0.01, "backoff_max": 0.05})


@pytest.fixture
def draft(planner):
    """A draft the planner recommends: 40 black tees S and 60 M from Acme for MAIN."""
    planner.add_variant("TEE-BLK-S", warehouse="MAIN", lead_time=21, review_period=30, replenishment=40, oos=5,
                        vendor="Acme Textiles", cost_price="4.20")
    planner.add_variant("TEE-BLK-M", warehouse="MAIN", lead_time=21, review_period=30, replenishment=60, oos=30,
                        vendor="Acme Textiles", cost_price="4.20")
    return planner.add_purchase_order(vendor="Acme Textiles", warehouse="MAIN", expected_date="2026-07-01", items=[
        {"sku": "TEE-BLK-S", "replenishment": 40, "cost": "4.20"},
        {"sku": "TEE-BLK-M", "replenishment": 60, "cost": "4.20"}])


@pytest.fixture
def pulled(planner_connection, draft, q_sync):
    """The draft pulled into a Recommendation."""
    from integrations.flows.replenishment import recommendations_pull
    from integrations.models import Recommendation

    assert recommendations_pull(connection=planner_connection)["status"] == "ok"
    return Recommendation.objects.get(connection=planner_connection, planner_id=draft["id"])


@pytest.fixture
def approve(ops_user, django_capture_on_commit_callbacks):
    """approve(rec) the way the screen does: approval committed, then the queued placement (run inline)."""
    from integrations.flows.replenishment import recommendation_approve

    def run(rec):
        with django_capture_on_commit_callbacks(execute=True):
            return recommendation_approve(recommendation_id=rec.pk, user=ops_user)

    return run
