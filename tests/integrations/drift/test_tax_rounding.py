"""The tax-and-rounding check over real HTTP: the tax the ERP booked on a posted order against the
storefront's tax, beyond the rounding recorded when posting; owned by finance, raised once, cleared."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from integrations.models import DriftRun, OrderLink

pytestmark = pytest.mark.django_db


def test_an_erp_tax_differing_from_the_storefront_is_raised_for_finance_and_cleared_when_corrected(
        order_setup, shopify_connection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = order_setup.shopify.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 2, "price": "10.00"}],
                                                 financial_status="paid", deliver="none")
        check_run("orphaned_orders")  # its reconciliation poll brings the order in and posts it
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    assert link.state == OrderLink.State.POSTED
    erp = order_setup.erp
    booked = erp._orders[link.erp_order_id]
    correct = booked["tax_total"]
    booked["tax_total"] = "3.95"  # the ERP re-computed the tax its own way

    run = check_run("tax_rounding")
    assert (run.status, run.found) == (DriftRun.Status.FINDINGS, 1), run.error
    record = ExceptionRecord.objects.get(type_code="drift_tax_mismatch")
    assert record.team == "finance" and record.order == link
    assert f"the ERP booked tax 3.95 GBP on Sales Order {link.erp_order_id}, the storefront charged {order['total_tax']} GBP" \
        in record.message
    assert check_run("tax_rounding").raised == 0  # read again (its gap is open), not raised again

    booked["tax_total"] = correct
    fixed = check_run("tax_rounding")
    assert (fixed.status, fixed.resolved) == (DriftRun.Status.OK, 1)
    record.refresh_from_db()
    assert record.status == "resolved"


def test_an_order_booked_as_the_storefront_said_raises_nothing(order_setup, shopify_connection,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order_setup.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid",
                                         deliver="none")
        check_run("orphaned_orders")
    run = check_run("tax_rounding")
    assert (run.status, run.summary["orders_checked"]) == (DriftRun.Status.OK, 1)
