"""Finance's decisions on a payout's reconciliation (approve with a note, reject, send back, re-match)
and the posting of approved payouts to the ERP as one balanced journal each, exactly once.

Per-connection settings (Connection.settings): `payout_four_eyes` (the preparer may not approve),
`payout_bank_account`, `payout_clearing_account`, `payout_fee_account`, `payout_variance_account`
(the journal's accounts; defaults in ACCOUNT_DEFAULTS)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from config.roles import FINANCE, user_roles
from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors.base import (
    JOURNALS,
    ConnectorError,
    ErpJournalLine,
    ErpJournalRequest,
    TransientError,
    require,
)
from integrations.domain import format_amount, from_minor_units
from integrations.models import BalanceTransaction, OutboundWrite, Payout, ReconciliationLine
from integrations.writes import outbound_write, write_succeeded

from .exception_types import PAYOUT_JOURNAL_NOT_POSTED
from .matching import payout_match, payout_totals

log = logging.getLogger("ledgerline.payouts")
S = Payout.Status
Class = ReconciliationLine.DifferenceClass

# The approval flow's moves (matching moves imported / matched / variance among themselves).
TRANSITIONS = {
    S.IMPORTED: {S.REJECTED, S.SENT_BACK},
    S.MATCHED: {S.APPROVED, S.REJECTED, S.SENT_BACK},
    S.VARIANCE: {S.APPROVED, S.REJECTED, S.SENT_BACK},
    S.APPROVED: {S.POSTED},
    S.POSTED: set(),
    S.REJECTED: {S.IMPORTED},  # re-matched: reopened
    S.SENT_BACK: {S.IMPORTED},
}
ACCOUNT_DEFAULTS = {"payout_bank_account": "BANK", "payout_clearing_account": "PSP-CLEARING",
                    "payout_fee_account": "PSP-FEES", "payout_variance_account": "PAYOUT-VARIANCE"}
MAX_TRANSIENT_ATTEMPTS = 3  # ERP outages retried by the batch; then a finance exception


class PayoutRefused(Exception):
    """What a person asked cannot be done to this payout (locked, already decided, needs a note…)."""


def payout_move(payout: Payout, to: str, *, user=None, reason: str = "", **fields) -> None:
    """The one place the approval flow changes a payout's status: by the table, under the row lock the
    caller holds, saved (not update()d) so the history table records who, when and why."""
    if to not in TRANSITIONS.get(payout.status, set()):
        raise PayoutRefused(f"A payout that is {payout.get_status_display().lower()} cannot become "
                            f"{S(to).label.lower()}.")
    payout.status = to
    for name, value in fields.items():
        setattr(payout, name, value)
    payout._change_reason = reason[:100]
    if user is not None:
        payout._history_user = user
    payout.save()


def four_eyes(payout: Payout) -> bool:
    return str((payout.connection.settings or {}).get("payout_four_eyes", "")).lower() in ("1", "true", "yes", "on")


def is_finance(user) -> bool:
    """Only finance decides payouts; admins may read them (and configure), not approve."""
    return FINANCE in user_roles(user)


def approval_blocker(payout: Payout, user) -> str:
    """Why `user` may not approve this payout now ("" when they may)."""
    if not is_finance(user):
        return "Only finance may approve payouts."
    if payout.locked:
        return f"This payout is already {payout.get_status_display().lower()}."
    if payout.status not in (S.MATCHED, S.VARIANCE):
        return f"A payout that is {payout.get_status_display().lower()} must be matched before it is approved."
    if four_eyes(payout) and payout.prepared_by_id and payout.prepared_by_id == user.pk:
        return "Four-eyes: you prepared this reconciliation, so another finance member must approve it."
    return ""


def needs_note(payout: Payout, totals: dict | None = None) -> bool:
    totals = totals or payout_totals(payout)
    return payout.status == S.VARIANCE or bool(totals["variance"]) or bool(totals["unmatched"])


def _locked(payout_id: int) -> Payout:
    return Payout.objects.select_for_update().select_related("connection").get(pk=payout_id)


def payout_approve(*, payout_id: int, user, note: str = "") -> Payout:
    """Approve (once: a second press finds it approved) and queue the posting batch."""
    note = (note or "").strip()
    with transaction.atomic():
        payout = _locked(payout_id)
        blocker = approval_blocker(payout, user)
        if blocker:
            raise PayoutRefused(blocker)
        if needs_note(payout) and not note:
            raise PayoutRefused("This payout has a variance: say why it is accepted (a note is required).")
        payout_move(payout, S.APPROVED, user=user, reason=f"approved: {note}" if note else "approved",
                    approved_by=user, approved_at=timezone.now(), decision_note=note[:2000])
    transaction.on_commit(_queue_posting)
    return payout


def _decide(payout_id: int, user, to: str, reason: str, verb: str) -> Payout:
    reason = (reason or "").strip()
    if not is_finance(user):
        raise PayoutRefused("Only finance may decide payouts.")
    if not reason:
        raise PayoutRefused(f"Say why it is {verb}.")
    with transaction.atomic():
        payout = _locked(payout_id)
        if payout.locked:
            raise PayoutRefused(f"This payout is already {payout.get_status_display().lower()}: it is locked.")
        payout_move(payout, to, user=user, reason=f"{verb}: {reason}", decision_note=reason[:2000],
                    approved_by=None, approved_at=None)
    return payout


def payout_reject(*, payout_id: int, user, reason: str) -> Payout:
    return _decide(payout_id, user, S.REJECTED, reason, "rejected")


def payout_send_back(*, payout_id: int, user, reason: str) -> Payout:
    return _decide(payout_id, user, S.SENT_BACK, reason, "sent back")


def payout_rematch_by(*, payout_id: int, user) -> Payout:
    """Match again now (late postings count). A rejected or sent-back payout is reopened; the person
    who re-matches prepared what the reconciliation now says. Never on a locked payout."""
    if not is_finance(user):
        raise PayoutRefused("Only finance may re-match payouts.")
    with transaction.atomic():
        payout = _locked(payout_id)
        if payout.locked:
            raise PayoutRefused(f"This payout is {payout.get_status_display().lower()}: its reconciliation is locked.")
        if payout.status in (S.REJECTED, S.SENT_BACK):
            payout_move(payout, S.IMPORTED, user=user, reason="reopened and re-matched", prepared_by=user)
        elif payout.prepared_by_id != user.pk:
            payout.prepared_by = user
            payout._change_reason, payout._history_user = "re-matched", user
            payout.save()
        payout_match(payout.pk)
    return Payout.objects.get(pk=payout_id)


# --- the journal -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalFigures:
    """What one payout's journal books, in minor units of its currency (signed)."""

    net: int  # what the bank received
    fees: int  # the provider's fees at the agreed rate (a cost: positive)
    variance: int  # what differs from the ERP (received more: positive), as the reconciliation says


def journal_reference(payout: Payout) -> str:
    return f"payout:{payout.connection.code}:{payout.pk}"


def journal_figures(payout: Payout, totals: dict | None = None) -> JournalFigures:
    """Net from the payout; fees the provider kept (its per-transaction fees and fee transactions,
    test ones excluded) corrected to the agreed rate by the fee mismatch; variance from the lines."""
    totals = totals or payout_totals(payout)
    rows = BalanceTransaction.objects.filter(payout=payout, test=False).exclude(type=BalanceTransaction.Type.PAYOUT)
    kept = rows.aggregate(total=Sum("fee_minor"))["total"] or 0
    fee_rows = rows.filter(type=BalanceTransaction.Type.FEE).aggregate(total=Sum("amount_minor"))["total"] or 0
    fee_variance = totals["variance_by_class"].get(Class.FEE_MISMATCH, 0)
    return JournalFigures(net=payout.amount_minor, fees=kept - fee_rows + fee_variance, variance=totals["variance"])


def _pair(lines: list, currency: str, debit_account: str, credit_account: str, minor: int, description: str,
          reference: str) -> None:
    """Debit one account and credit the other by `minor` (a negative amount swaps the sides; 0 books nothing)."""
    if not minor:
        return
    if minor < 0:
        debit_account, credit_account, minor = credit_account, debit_account, -minor
    amount = format_amount(from_minor_units(minor, currency), currency)
    lines.append(ErpJournalLine(account=debit_account, debit=amount, description=description, reference=reference))
    lines.append(ErpJournalLine(account=credit_account, credit=amount, description=description, reference=reference))


def payout_journal(payout: Payout, figures: JournalFigures, accounts: dict[str, str]) -> ErpJournalRequest:
    """The payout's one journal: debit bank / credit clearing for the net; debit fees / credit clearing
    for the fees; the accepted variance between clearing and the variance account. Balanced by
    construction (every amount is booked as a debit and a credit of the same size)."""
    bank, clearing = accounts["payout_bank_account"], accounts["payout_clearing_account"]
    fees, variance = accounts["payout_fee_account"], accounts["payout_variance_account"]
    ref, currency, lines = payout.external_id, payout.currency, []
    _pair(lines, currency, bank, clearing, figures.net, "bank deposit of the payout", ref)
    _pair(lines, currency, fees, clearing, figures.fees, "payment provider fees", ref)
    _pair(lines, currency, clearing, variance, figures.variance, "accepted payout variance", ref)
    return ErpJournalRequest(
        external_reference=journal_reference(payout), date=payout.payout_date.isoformat(), currency=currency,
        lines=tuple(lines), description=f"{payout.get_source_display()} payout {payout.external_id} "
                                        f"({payout.connection.name})"[:200])


def journal_accounts(connection) -> dict[str, str]:
    own = connection.settings or {}
    return {name: str(own.get(name) or default) for name, default in ACCOUNT_DEFAULTS.items()}


# --- posting -----------------------------------------------------------------------------------


def _queue_posting() -> None:
    from django_q.tasks import async_task

    async_task("integrations.flows.payouts.approval.payouts_post_approved", task_name="payouts-post-approved")


def payouts_post_approved() -> int:
    """The posting batch (every 15 minutes, and after each approval): every approved payout not yet
    posted gets its journal. Returns how many were posted."""
    posted = 0
    for payout_id in Payout.objects.filter(status=S.APPROVED).order_by("approved_at", "pk").values_list("pk", flat=True):
        posted += payout_post(payout_id) == S.POSTED
    return posted


def payout_post(payout_id: int) -> str:
    """Book the approved payout's journal in the ERP, once. Returns the payout's status.

    Exactly once: the journal's external reference is the payout's; after an attempt whose outcome is
    unknown (a crash, a timeout, a failure) the ERP is asked for it first; the ERP itself keeps it
    unique (a second worker's create answers the same journal)."""
    from integrations.connectors import erp_connection, get_erp

    payout = Payout.objects.select_related("connection").get(pk=payout_id)
    if payout.status != S.APPROVED:
        return payout.status
    reference = journal_reference(payout)
    earlier = OutboundWrite.objects.filter(action="create_journal", external_reference=reference)
    asked_before = earlier.exists()
    try:
        erp = get_erp()
        require(erp, JOURNALS)
        request = payout_journal(payout, journal_figures(payout), journal_accounts(payout.connection))
        with outbound_write(action="create_journal", idempotency_key=reference, connection=erp_connection(),
                            system=getattr(erp, "system", ""), subject=("payout", payout.pk), finish=False) as write:
            journal = erp.find_journal(reference) if asked_before else None
            if journal is None:
                journal = erp.create_journal(request)
            write.response_id = journal.id
    except ConnectorError as exc:
        return _post_failed(payout, exc, earlier.filter(status=OutboundWrite.Status.FAILED).count())
    with transaction.atomic():
        payout = _locked(payout_id)
        if payout.status == S.APPROVED:
            payout_move(payout, S.POSTED, reason=f"posted: journal {journal.id}", posted_at=timezone.now(),
                        journal_reference=journal.id)
        write_succeeded(write.pk, journal.id)
    for record in ExceptionRecord.objects.filter(key=f"{PAYOUT_JOURNAL_NOT_POSTED.code}:{payout_id}",
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=f"The ERP booked journal {journal.id}.", action="auto_resolved")
    log.info("payout %s posted as journal %s", reference, journal.id)
    return S.POSTED


def _post_failed(payout: Payout, exc: ConnectorError, attempts: int) -> str:
    """An outage is retried by the batch, then owned by finance; a refusal is finance's at once."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    log.warning("payout %s: journal not posted (attempt %s): %s", payout.pk, attempts, error)
    if not isinstance(exc, TransientError) or attempts >= MAX_TRANSIENT_ATTEMPTS:
        exception_raise(exc_type=PAYOUT_JOURNAL_NOT_POSTED, key=str(payout.pk), fingerprint=str(payout.connection_id),
                        message=f"The ERP did not book the journal of payout {payout.external_id}: {error}",
                        last_error=error, subject=("payout", str(payout.pk)),
                        context={"payout": payout.external_id, "connection": payout.connection.name,
                                 "reference": journal_reference(payout)},
                        retry_args={"payout_id": payout.pk})
    return payout.status


def retry_payout_post(record) -> bool:
    """A person retries: post the journal now (once)."""
    payout_id = record.retry_args.get("payout_id")
    if not Payout.objects.filter(pk=payout_id).exists():
        return False
    return payout_post(payout_id) == S.POSTED
