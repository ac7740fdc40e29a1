"""Inventory drift reads the REST ERP's stock by its export (a request per depot, no pages): a move
in the ERP is found from it and resolved once the next sync pushes it; a depot of hundreds of items
costs one request."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.flows.inventory import inventory_sync_start
from integrations.models import DriftRun
from tests.integrations.drift.stocked_shop import stocked_shop

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_bulk_wait(settings):
    settings.DRIFT = {"bulk_poll_seconds": 0}


@pytest.fixture
def shop(sandbox, shopify_connection):
    return stocked_shop(sandbox, shopify_connection, other_items=400)  # 2 pages' worth, still one export


def test_an_erp_move_is_found_from_one_export_request_and_resolved_by_the_next_sync(sandbox, shop, shopify_connection):
    sandbox.erp.set_stock("MUG-1", "MAIN", on_hand=5)  # the warehouse counted fewer
    sandbox.erp.requests_by_kind.clear()

    run = check_run("inventory_drift")

    assert (run.status, run.found, run.raised) == (DriftRun.Status.FINDINGS, 1, 1), run.error
    assert sandbox.erp.requests_by_kind == {"stock_export": 1}  # no stock pages
    mug = ExceptionRecord.objects.get(type_code="drift_inventory", sku="MUG-1")
    assert "shows 12, Ledgerline last pushed 12, the ERP's ATS is 5" in mug.message

    inventory_sync_start(connection=shopify_connection, trigger="manual", queue=False)
    cleared = check_run("inventory_drift")
    assert (cleared.status, cleared.resolved) == (DriftRun.Status.OK, 1)
    assert ExceptionRecord.objects.get(pk=mug.pk).status == "resolved"
