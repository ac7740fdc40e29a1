"""Replenishment back from Inventory Planner, over HTTP against the sandbox planner and ERP: drafts to
review, an approval raising one ERP purchase order however it is repeated, receipts flowing back, and
SKUs nobody can order owned by ops."""
import threading

import pytest
from django.db import connection as db_connection

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_retry
from integrations.flows.replenishment import (
    RecommendationRefused,
    line_quantity_set,
    planner_catalogue_check,
    receipts_sync,
    recommendation_place,
    recommendations_pull,
)
from integrations.models import OutboundWrite, Recommendation
from tests.factories import SkuMappingFactory

S = Recommendation.Status


def _erp_orders(sandbox, rec):
    return [po for po in sandbox.erp.purchase_orders if po["external_reference"] == rec.external_reference]


def test_a_draft_becomes_a_recommendation_with_erp_items_depot_and_urgency(pulled):
    lines = {line.sku: line for line in pulled.lines.all()}
    assert pulled.status == S.PENDING and pulled.vendor == "Acme Textiles" and pulled.depot == "MAIN"
    assert {sku: (line.erp_item_code, line.quantity_recommended, line.quantity_approved) for sku, line in lines.items()} == {
        "TEE-BLK-S": ("TEE-BLK-S", 40, 40), "TEE-BLK-M": ("TEE-BLK-M", 60, 60)}
    # TEE-BLK-S sells out in 5 days, well inside its 21-day lead time.
    assert (pulled.urgency, pulled.days_of_stock) == ("high", 5)
    assert str(lines["TEE-BLK-S"].unit_cost) == "4.2000"


def test_pulling_again_keeps_one_recommendation_and_what_ops_edited(pulled, planner_connection):
    line = pulled.lines.get(sku="TEE-BLK-M")
    line_quantity_set(line_id=line.pk, quantity=45)
    recommendations_pull(connection=planner_connection)
    assert Recommendation.objects.filter(planner_id=pulled.planner_id).count() == 1
    line.refresh_from_db()
    assert (line.quantity_recommended, line.quantity_approved) == (60, 45)


def test_approving_raises_the_purchase_order_with_the_edited_quantity_and_marks_it_in_the_planner(
        pulled, approve, sandbox, planner):
    line_quantity_set(line_id=pulled.lines.get(sku="TEE-BLK-M").pk, quantity=45)
    approve(pulled)
    pulled.refresh_from_db()
    [erp_po] = _erp_orders(sandbox, pulled)
    assert {(l["item_code"], l["quantity"], l["unit_cost"]) for l in erp_po["lines"]} == {
        ("TEE-BLK-S", 40, "4.20"), ("TEE-BLK-M", 45, "4.20")}
    assert (erp_po["supplier"], erp_po["depot"], erp_po["expected_date"]) == ("Acme Textiles", "MAIN", "2026-07-01")
    assert pulled.status == S.SENT and pulled.erp_po_id == erp_po["id"]
    marked = planner.purchase_order(pulled.planner_id)
    assert (marked["status"], marked["extra_reference"]) == ("open", erp_po["id"])
    writes = OutboundWrite.objects.filter(subject_type="recommendation", subject_id=str(pulled.pk))
    assert sorted(writes.values_list("action", "status")) == [("create_purchase_order", "succeeded"),
                                                             ("planner_mark_ordered", "succeeded")]


def test_approving_twice_creates_one_erp_purchase_order(pulled, approve, sandbox):
    approve(pulled)
    with pytest.raises(RecommendationRefused, match="already"):
        approve(pulled)
    recommendation_place(recommendation_id=pulled.pk)  # a retried task
    assert len(_erp_orders(sandbox, pulled)) == 1


def test_a_crash_between_the_erp_create_and_the_status_update_is_replayed_without_a_second_order(
        pulled, approve, sandbox, planner, monkeypatch):
    from integrations.flows.replenishment import approve as approve_module

    def crash(rec, order):
        raise SystemExit("worker killed")

    monkeypatch.setattr(approve_module, "raised_in_erp", crash)
    with pytest.raises(SystemExit):
        approve(pulled)
    assert len(_erp_orders(sandbox, pulled)) == 1
    assert Recommendation.objects.get(pk=pulled.pk).status == S.APPROVED
    monkeypatch.undo()
    assert recommendation_place(recommendation_id=pulled.pk) == S.SENT
    assert len(_erp_orders(sandbox, pulled)) == 1
    assert planner.purchase_order(pulled.planner_id)["extra_reference"] == _erp_orders(sandbox, pulled)[0]["id"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_placing_one_approval_at_once_create_one_erp_purchase_order(
        erp_ready, planner, ops_user, monkeypatch):
    from django_q.conf import Conf

    from integrations.flows.replenishment import recommendation_approve
    from tests.factories import ConnectionFactory

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr("integrations.flows.replenishment.approve._queue_place", lambda pk: None)
    connection = ConnectionFactory(code="ip", kind="inventory_planner", name="IP",
                                   base_url=f"{erp_ready.url}/inventory-planner/api/v1",
                                   credentials={"api_key": "sandbox-ip-key"}, settings={"account_id": "a1000"})
    planner.add_purchase_order(vendor="Acme Textiles", warehouse="MAIN", items=[{"sku": "MUG-001", "replenishment": 12}])
    recommendations_pull(connection=connection)
    rec = Recommendation.objects.get()
    recommendation_approve(recommendation_id=rec.pk, user=ops_user)
    erp_ready.erp.latency = 0.2  # both workers are inside the ERP call at the same time
    barrier, outcomes = threading.Barrier(2), []

    def worker():
        try:
            barrier.wait()
            outcomes.append(recommendation_place(recommendation_id=rec.pk))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(_erp_orders(erp_ready, rec)) == 1
    assert Recommendation.objects.get().status == S.SENT
    assert len(outcomes) == 2


def test_receipts_recorded_in_the_erp_flow_back_to_the_recommendation_and_the_planner(
        pulled, approve, sandbox, planner):
    approve(pulled)
    pulled.refresh_from_db()
    sandbox.erp.receive_purchase_order(pulled.erp_po_id, [{"item_code": "TEE-BLK-S", "quantity": 40},
                                                          {"item_code": "TEE-BLK-M", "quantity": 10}])
    assert receipts_sync()["applied"] == 1
    pulled.refresh_from_db()
    assert pulled.status == S.PARTLY_RECEIVED
    assert dict(pulled.lines.values_list("sku", "quantity_received")) == {"TEE-BLK-S": 40, "TEE-BLK-M": 10}
    in_planner = planner.purchase_order(pulled.planner_id)
    assert in_planner["status"] == "partial"
    assert {i["sku"]: i["received"] for i in in_planner["items"]} == {"TEE-BLK-S": 40, "TEE-BLK-M": 10}

    sandbox.erp.receive_purchase_order(pulled.erp_po_id)  # the rest arrives
    receipts_sync()
    receipts_sync()  # read again: nothing changes, nothing is told twice
    pulled.refresh_from_db()
    assert pulled.status == S.RECEIVED and pulled.receipt_percent == 100
    in_planner = planner.purchase_order(pulled.planner_id)
    assert in_planner["status"] == "closed"
    assert {i["sku"]: i["received"] for i in in_planner["items"]} == {"TEE-BLK-S": 40, "TEE-BLK-M": 60}
    assert len([p for p in planner.patches if p["id"] == pulled.planner_id]) == 3  # ordered, partial, closed


def test_a_line_for_an_sku_the_erp_does_not_know_is_an_ops_exception_and_cannot_be_approved(
        planner, planner_connection, approve, sandbox, q_sync):
    po = planner.add_purchase_order(vendor="Acme Textiles", warehouse="MAIN", items=[
        {"sku": "TEE-RED-M", "replenishment": 10}, {"sku": "MUG-001", "replenishment": 5}])
    assert recommendations_pull(connection=planner_connection)["lines_unknown"] == 1
    rec = Recommendation.objects.get(planner_id=po["id"])
    record = ExceptionRecord.objects.get(type_code="purchase_line_unknown_item")
    assert (record.team, record.sku, record.status) == ("ops", "TEE-RED-M", "open")
    with pytest.raises(RecommendationRefused, match="TEE-RED-M"):
        approve(rec)
    assert _erp_orders(sandbox, rec) == []

    SkuMappingFactory(connection=planner_connection, storefront_sku="TEE-RED-M", erp_item_code="TEE-BLK-M")
    assert exception_retry(record=record) is True
    record.refresh_from_db()
    assert record.status == "resolved"
    approve(rec)
    assert {(l["item_code"], l["quantity"]) for l in _erp_orders(sandbox, rec)[0]["lines"]} == {
        ("TEE-BLK-M", 10), ("MUG-001", 5)}


def test_a_planner_sku_the_erp_does_not_know_is_an_ops_exception(planner, planner_connection):
    planner.add_variant("TEE-RED-M", warehouse="MAIN", replenishment=12)
    planner.add_variant("MUG-001", warehouse="MAIN", replenishment=3)
    assert planner_catalogue_check(connection=planner_connection)["unknown"] == 1
    [record] = ExceptionRecord.objects.filter(type_code="planner_sku_unknown")
    assert (record.team, record.sku) == ("ops", "TEE-RED-M")


def test_an_erp_refusal_is_owned_by_ops_and_its_retry_raises_the_order_once(
        pulled, approve, sandbox, planner):
    sandbox.erp.depots.pop("MAIN")
    approve(pulled)
    record = ExceptionRecord.objects.get(type_code="purchase_order_not_raised")
    assert "depot" in record.last_error.lower() and record.team == "ops"
    assert Recommendation.objects.get(pk=pulled.pk).status == S.APPROVED
    sandbox.erp.add_depot("MAIN")
    assert exception_retry(record=record) is True
    assert len(_erp_orders(sandbox, pulled)) == 1
    assert Recommendation.objects.get(pk=pulled.pk).status == S.SENT


def test_a_planner_that_refuses_the_key_is_an_owned_exception(planner_connection, planner):
    planner.api_key = "rotated"
    assert recommendations_pull(connection=planner_connection)["status"] == "failed"
    record = ExceptionRecord.objects.get(type_code="planner_pull_failed")
    assert record.subject_type == "connection" and "401" in record.last_error


@pytest.fixture
def reject(ops_user, django_capture_on_commit_callbacks):
    """reject(rec, reason) the way the screen does: the rejection committed, then the queued task (inline)."""
    from integrations.flows.replenishment import recommendation_reject

    def run(rec, reason="Vendor on holiday"):
        with django_capture_on_commit_callbacks(execute=True):
            return recommendation_reject(recommendation_id=rec.pk, user=ops_user, reason=reason)

    return run


def test_a_rejection_cancels_the_draft_in_the_planner_with_the_reason_in_its_notes(
        pulled, reject, planner, sandbox, ops_user):
    reject(pulled, "Vendor on holiday")
    draft = planner.purchase_order(pulled.planner_id)
    assert draft["status"] == "cancelled"
    assert f"Rejected in Ledgerline by {ops_user.get_username()}: Vendor on holiday" in draft["notes"]
    [patch] = [p for p in planner.patches if p["id"] == pulled.planner_id]  # what the sandbox planner recorded
    assert (patch["method"], patch["body"]["status"]) == ("PATCH", "cancelled")
    pulled.refresh_from_db()
    assert (pulled.status, pulled.planner_status) == (S.REJECTED, "cancelled")
    assert not _erp_orders(sandbox, pulled)
    writes = OutboundWrite.objects.filter(subject_type="recommendation", subject_id=str(pulled.pk))
    assert list(writes.values_list("action", "status")) == [("planner_mark_rejected", "succeeded")]
    from integrations.flows.replenishment.approve import planner_mark_rejected

    planner_mark_rejected(recommendation_id=pulled.pk)  # a retried task sends nothing more
    assert len([p for p in planner.patches if p["id"] == pulled.planner_id]) == 1


def test_a_rejection_the_planner_refused_is_owned_by_ops_and_sent_by_its_retry(
        pulled, reject, planner, planner_connection):
    planner.api_key = "rotated"
    reject(pulled)
    record = ExceptionRecord.objects.get(type_code="planner_rejection_not_sent")
    assert record.team == "ops" and "401" in record.last_error
    assert planner.purchase_order(pulled.planner_id)["status"] == "draft"
    planner.api_key = "sandbox-ip-key"
    assert exception_retry(record=record) is True
    assert planner.purchase_order(pulled.planner_id)["status"] == "cancelled"
    record.refresh_from_db()
    assert record.status == "resolved"
    recommendations_pull(connection=planner_connection)  # the cancelled draft does not come back for review
    assert Recommendation.objects.get(pk=pulled.pk).status == S.REJECTED


def test_a_draft_ordered_in_the_planner_meanwhile_is_not_cancelled_by_a_rejection(pulled, reject, planner):
    planner.purchase_orders[pulled.planner_id]["status"] = "open"  # someone ordered it in the planner
    reject(pulled)
    assert planner.purchase_order(pulled.planner_id)["status"] == "open"
    record = ExceptionRecord.objects.get(type_code="planner_rejection_not_sent")
    assert "it is open in the planner, no longer a draft" in record.message
