"""Finance approves a payout imported from the sandbox shop; its journal (bank deposit, fees, clearing,
accepted variance) is booked once in the sandbox ERP however the approval is repeated, retried or
replayed after a crash; only finance approves, four-eyes keeps the preparer out, a variance needs a note."""
from decimal import Decimal

import pytest

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_retry
from integrations.flows.payouts import approval, payouts_import_shopify
from integrations.flows.payouts.approval import (
    PayoutRefused,
    payout_approve,
    payout_post,
    payout_reject,
    payout_rematch_by,
    payout_send_back,
    payouts_post_approved,
)
from integrations.models import Payout

pytestmark = pytest.mark.django_db
S = Payout.Status


def _journals(sandbox, payout):
    return [j for j in sandbox.erp.journals if j["external_reference"] == f"payout:{payout.connection.code}:{payout.pk}"]


def _by_account(journal) -> dict[str, Decimal]:
    """Each account's balance in the journal (debit positive)."""
    balances: dict[str, Decimal] = {}
    for line in journal["lines"]:
        balances[line["account"]] = balances.get(line["account"], Decimal(0)) + Decimal(line["debit"]) - Decimal(line["credit"])
    return balances


@pytest.fixture
def approve(django_capture_on_commit_callbacks):
    """Approve as the screen does: the posting batch it queues runs (inline) once the approval commits."""
    def approve(**kw):
        with django_capture_on_commit_callbacks(execute=True):
            return payout_approve(**kw)
    return approve


@pytest.fixture
def matched_payout(shop, sell, shopify_connection):
    sell("20.00", 2)
    shop.payments_payout_run()
    payouts_import_shopify(connection=shopify_connection)
    payout = Payout.objects.get()
    assert payout.status == S.MATCHED
    return payout


@pytest.fixture
def variance_payout(shop, sell, shopify_connection):
    shopify_connection.settings = {**shopify_connection.settings, "payout_fee_percent": "1.2", "payout_fee_fixed_minor": 20}
    shopify_connection.save()
    sell("50.00")
    shop.payments_payout_run()
    payouts_import_shopify(connection=shopify_connection)
    payout = Payout.objects.get()
    assert payout.status == S.VARIANCE
    return payout


def test_approving_books_one_balanced_journal_of_bank_fees_and_clearing(approve, matched_payout, finance_user, sandbox):
    approve(payout_id=matched_payout.pk, user=finance_user)

    payout = Payout.objects.get()
    assert payout.status == S.POSTED and payout.approved_by == finance_user and payout.approved_at
    [journal] = _journals(sandbox, payout)
    assert payout.journal_reference == journal["id"]
    fee = sum(bt.fee_minor for bt in payout.balance_transactions.all())
    net = Decimal(payout.amount_minor) / 100
    assert _by_account(journal) == {"BANK": net, "PSP-FEES": Decimal(fee) / 100,
                                    "PSP-CLEARING": -(net + Decimal(fee) / 100)}
    assert journal["date"] == payout.payout_date.isoformat()


def test_pressing_approve_twice_and_the_batch_running_again_post_one_journal(
        approve, matched_payout, finance_user, sandbox):
    approve(payout_id=matched_payout.pk, user=finance_user)
    with pytest.raises(PayoutRefused, match="already posted"):
        approve(payout_id=matched_payout.pk, user=finance_user)
    assert payouts_post_approved() == 0
    assert payout_post(matched_payout.pk) == S.POSTED
    assert len(_journals(sandbox, matched_payout)) == 1


def test_a_crash_after_the_erp_booked_the_journal_is_replayed_without_a_second_one(
        approve, matched_payout, finance_user, sandbox, monkeypatch):
    real_move = approval.payout_move

    def crash(payout, to, **kw):
        if to == S.POSTED:
            raise SystemExit("worker killed")
        return real_move(payout, to, **kw)

    monkeypatch.setattr(approval, "payout_move", crash)
    with pytest.raises(SystemExit):
        approve(payout_id=matched_payout.pk, user=finance_user)
    assert Payout.objects.get().status == S.APPROVED
    assert len(_journals(sandbox, matched_payout)) == 1
    monkeypatch.undo()

    assert payouts_post_approved() == 1  # the schedule's batch finds it approved, asks the ERP first
    assert len(_journals(sandbox, matched_payout)) == 1
    payout = Payout.objects.get()
    assert payout.status == S.POSTED and payout.journal_reference == _journals(sandbox, payout)[0]["id"]


def test_an_erp_outage_is_retried_by_the_batch_then_owned_by_finance(approve, matched_payout, finance_user, sandbox):
    sandbox.erp.outage = True
    approve(payout_id=matched_payout.pk, user=finance_user)
    assert Payout.objects.get().status == S.APPROVED
    assert not ExceptionRecord.objects.filter(type_code="payout_journal_not_posted").exists()
    payouts_post_approved()
    payouts_post_approved()
    record = ExceptionRecord.objects.get(type_code="payout_journal_not_posted")
    assert record.team == "finance" and record.subject_type == "payout"

    sandbox.erp.outage = False
    assert exception_retry(record=record) is True
    assert Payout.objects.get().status == S.POSTED
    assert len(_journals(sandbox, matched_payout)) == 1


def test_a_variance_needs_a_note_and_goes_to_the_variance_account(approve, variance_payout, finance_user, sandbox):
    with pytest.raises(PayoutRefused, match="note"):
        approve(payout_id=variance_payout.pk, user=finance_user, note="  ")
    assert Payout.objects.get().status == S.VARIANCE

    approve(payout_id=variance_payout.pk, user=finance_user, note="Fee rise agreed by phone with Shopify")

    payout = Payout.objects.get()
    assert payout.status == S.POSTED and payout.decision_note == "Fee rise agreed by phone with Shopify"
    [journal] = _journals(sandbox, payout)
    variance = payout.lines.get(difference_class="fee_mismatch").variance_minor  # charged more: negative
    charged = payout.balance_transactions.get(type="charge").fee_minor
    balances = _by_account(journal)
    assert balances["PAYOUT-VARIANCE"] == Decimal(-variance) / 100
    assert balances["PSP-FEES"] == Decimal(charged + variance) / 100  # at the agreed rate
    assert sum(balances.values()) == 0


@pytest.mark.parametrize("role_user", ["ops_user", "ecommerce_user", "admin_user"])
def test_only_finance_may_approve(approve, matched_payout, role_user, request, sandbox):
    user = request.getfixturevalue(role_user)
    with pytest.raises(PayoutRefused, match="Only finance"):
        approve(payout_id=matched_payout.pk, user=user)
    assert Payout.objects.get().status == S.MATCHED and not _journals(sandbox, matched_payout)


def test_with_four_eyes_the_preparer_cannot_approve_but_a_colleague_can(
        approve, matched_payout, finance_user, sandbox, shopify_connection):
    from tests.factories import UserFactory

    shopify_connection.settings = {**shopify_connection.settings, "payout_four_eyes": True}
    shopify_connection.save()
    payout_rematch_by(payout_id=matched_payout.pk, user=finance_user)
    with pytest.raises(PayoutRefused, match="Four-eyes"):
        approve(payout_id=matched_payout.pk, user=finance_user)
    colleague = UserFactory(username="fiona-finance", roles=["finance"])
    approve(payout_id=matched_payout.pk, user=colleague)
    payout = Payout.objects.get()
    assert (payout.status, payout.prepared_by, payout.approved_by) == (S.POSTED, finance_user, colleague)


def test_reject_and_send_back_need_a_reason_and_are_in_the_history(matched_payout, finance_user, sandbox):
    with pytest.raises(PayoutRefused, match="why"):
        payout_send_back(payout_id=matched_payout.pk, user=finance_user, reason="")
    payout_send_back(payout_id=matched_payout.pk, user=finance_user, reason="Wait for the credit memo")
    assert Payout.objects.get().status == S.SENT_BACK
    payout_rematch_by(payout_id=matched_payout.pk, user=finance_user)  # reopened
    assert Payout.objects.get().status == S.MATCHED
    payout_reject(payout_id=matched_payout.pk, user=finance_user, reason="Duplicate of another payout")
    assert Payout.objects.get().status == S.REJECTED
    history = [(h.status, h.history_user, h.history_change_reason) for h in Payout.history.order_by("history_id")]
    assert (S.SENT_BACK, finance_user, "sent back: Wait for the credit memo") in history
    assert (S.REJECTED, finance_user, "rejected: Duplicate of another payout") in history
    assert not _journals(sandbox, matched_payout)


def test_a_posted_payout_is_locked(approve, matched_payout, finance_user, sandbox):
    approve(payout_id=matched_payout.pk, user=finance_user)
    for action in (lambda: payout_rematch_by(payout_id=matched_payout.pk, user=finance_user),
                   lambda: payout_reject(payout_id=matched_payout.pk, user=finance_user, reason="oops")):
        with pytest.raises(PayoutRefused, match="locked"):
            action()
    assert Payout.objects.get().status == S.POSTED


def test_prima_books_the_same_journal_once(approve, matched_payout, finance_user, sandbox, settings):
    from integrations.connectors import erp_clients_clear

    settings.ERP = {**settings.ERP, "kind": "prima"}
    erp_clients_clear()
    approve(payout_id=matched_payout.pk, user=finance_user)
    assert payout_post(matched_payout.pk) == S.POSTED
    [journal] = [j for j in sandbox.prima.journals
                 if j["external_reference"] == f"payout:{matched_payout.connection.code}:{matched_payout.pk}"]
    assert Payout.objects.get().journal_reference == journal["id"]
    assert sum(_by_account(journal).values()) == 0 and _by_account(journal)["BANK"] == Decimal(matched_payout.amount_minor) / 100
    assert not _journals(sandbox, matched_payout)  # nothing went to the REST ERP
    erp_clients_clear()
