"""Mapping proposals: someone who may not change mappings (ops, finance, e-commerce) proposes the
row an exception needs; an admin approves it with one click (the row is written by the same
`services.mapping_save` an admin's own add uses, then the exceptions it fixes are retried) or
rejects it with a reason. Every step is written on the exception's timeline."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from exceptions_queue.models import BulkJob, ExceptionRecord
from exceptions_queue.services import exception_comment, exceptions_retry_queue
from integrations.models import Connection

from . import services
from .models import MappingProposal
from .tables import TableSpec, get_table

log = logging.getLogger("ledgerline.mappings")

# Exception types a new mapping row fixes, and the table that row goes in (the codes are declared
# in integrations/flows/orders/exception_types.py and integrations/flows/inventory/exception_types.py).
PROPOSABLE_TYPES = {
    "unknown_sku": "skus",
    "inventory_unknown_sku": "skus",
    "inventory_unmapped_location": "locations",
    "invalid_depot": "depots",
    "missing_tax_mapping": "taxcodes",
}


class ProposalRefused(Exception):
    """The proposal cannot be made or decided; the message says why, in the user's words."""


@dataclass(frozen=True)
class ProposalTarget:
    """The mapping row an exception asks for: its table and the values known from the exception."""

    spec: TableSpec
    initial: dict

    @property
    def key(self) -> str:
        return proposal_key(self.spec, self.initial)


def _connection_code(record: ExceptionRecord) -> str:
    if record.order_id is not None:
        return record.order.connection.code
    return str(record.retry_args.get("connection") or record.context.get("connection") or "")


def proposal_target(record: ExceptionRecord) -> ProposalTarget | None:
    """What to prefill for this exception, or None when no mapping row would fix it (another type,
    a line without any SKU, a storefront we no longer know)."""
    table = PROPOSABLE_TYPES.get(record.type_code)
    if table is None:
        return None
    code = _connection_code(record)
    if not code or not Connection.objects.storefronts().filter(code=code).exists():
        return None
    context = record.context or {}
    initial: dict = {"connection": code}
    if table == "skus":
        sku = record.sku or str(context.get("sku") or "")
        if not sku or sku.startswith("(blank)"):  # a line with no SKU: the storefront must give it one
            return None
        initial.update(storefront_sku=sku, active=True)
    elif table == "locations":
        location = str(context.get("location") or "")
        if not location:
            return None
        initial.update(storefront_location=location, sellable_states=["available"], active=True)
    elif table == "depots":
        initial.update(country=str(context.get("country") or "").upper()[:2], storefront_location="", active=True)
    else:
        country = str(context.get("country") or "")
        initial.update(
            tax_category="", rate=str(context.get("rate") or ""), country="" if country == "—" else country.upper()[:2]
        )
    return ProposalTarget(get_table(table), initial)


def existing_row(target: ProposalTarget) -> Model | None:
    """The mapping row that already has the key the target would add (then a proposal is pointless)."""
    lookup = {"connection__code": target.initial["connection"]}
    for name in target.spec.key:
        if name == "connection":
            continue
        value = target.initial.get(name, "")
        if name == "rate":
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                return None
        lookup[name] = value
    return target.spec.model.objects.filter(**lookup).first()


# --- the values a proposal carries --------------------------------------------------------------


def _plain(value):
    """A cleaned form value as JSON, in the shape the same form accepts back as data."""
    if isinstance(value, Model):
        return getattr(value, "code", value.pk)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None:
        return ""
    return value


def form_values(form) -> dict:
    return {name: _plain(form.cleaned_data.get(name)) for name in form.fields}


def proposal_key(spec: TableSpec, values: dict) -> str:
    """Like TableSpec.label: the columns that identify the row, '*' for a blank one."""
    parts = []
    for name in spec.key:
        value = values.get(name, "")
        if name == "rate" and value not in ("", None):
            try:
                value = format(Decimal(str(value)).normalize(), "f")
            except InvalidOperation:
                pass
        parts.append(str(value) if value not in ("", None) else "*")
    return " · ".join(parts)[:300]


@dataclass(frozen=True)
class ProposedValue:
    label: str
    value: object


def proposed_values(proposal: MappingProposal) -> list[ProposedValue]:
    """The proposed row as the admin reads it: the form's own labels, blank fields left out."""
    fields = get_table(proposal.table).form.base_fields
    shown = []
    for name, value in proposal.values.items():
        if value in ("", None, []) or name not in fields:
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        shown.append(ProposedValue(fields[name].label or name.replace("_", " ").capitalize(), value))
    return shown


def proposal_summary(proposal: MappingProposal) -> str:
    spec = get_table(proposal.table)
    rest = [
        f"{v.label} {('Yes' if v.value else 'No') if isinstance(v.value, bool) else v.value}"
        for v in proposed_values(proposal)
        if v.label not in {spec.form.base_fields[k].label for k in spec.key}
    ]
    return f"{spec.noun} {proposal.key}" + (f" ({', '.join(rest)})" if rest else "")


# --- proposing --------------------------------------------------------------------------------


def pending_proposal_for(*, table: str, key: str) -> MappingProposal | None:
    return (
        MappingProposal.objects.select_related("proposed_by")
        .filter(table=table, key=key, status=MappingProposal.Status.PENDING)
        .first()
    )


def _already_proposed(proposal: MappingProposal) -> str:
    who = proposal.proposed_by.get_username() if proposal.proposed_by else "Someone"
    return (
        f"{who} already proposed {get_table(proposal.table).noun} {proposal.key} on "
        f"{timezone.localtime(proposal.proposed_at):%Y-%m-%d %H:%M}: it is waiting for an admin."
    )


def proposal_create(*, table: str, form, actor, record: ExceptionRecord | None = None, comment: str = "") -> MappingProposal:
    """Store a proposal from a validated mapping form (the form already refused a key that is
    mapped, and asked the ERP about the codes). Refused when the same row is already proposed."""
    spec = get_table(table)
    values = form_values(form)
    key = proposal_key(spec, values)
    waiting = pending_proposal_for(table=table, key=key)
    if waiting is not None:
        raise ProposalRefused(_already_proposed(waiting))
    proposal = MappingProposal(
        table=table, key=key, values=values, exception=record, comment=comment.strip()[:500], proposed_by=actor
    )
    try:
        with transaction.atomic():
            proposal.save()
            if record is not None:
                exception_comment(
                    record=record, actor=actor,
                    note=f"Proposed a mapping: {proposal_summary(proposal)}. Waiting for an admin to approve it.",
                )
    except IntegrityError:  # another user proposed the same row at the same moment
        waiting = pending_proposal_for(table=table, key=key)
        raise ProposalRefused(_already_proposed(waiting) if waiting else "This mapping was just proposed.") from None
    log.info("mapping proposal %s created by %s for %s", proposal.pk, actor, key)
    return proposal


# --- deciding ---------------------------------------------------------------------------------


def _decided_message(proposal: MappingProposal) -> str:
    who = proposal.decided_by.get_username() if proposal.decided_by else "someone"
    when = f" on {timezone.localtime(proposal.decided_at):%Y-%m-%d %H:%M}" if proposal.decided_at else ""
    return f"This proposal was already {proposal.get_status_display().lower()} by {who}{when}."


def _lock_pending(proposal: MappingProposal, new_status: str) -> MappingProposal:
    locked = MappingProposal.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=proposal.pk)
    if not MappingProposal.can_move(locked.status, new_status):
        raise ProposalRefused(_decided_message(locked))
    return locked


@dataclass(frozen=True)
class Approval:
    proposal: MappingProposal
    row: Model
    job: BulkJob  # the retry of the exceptions the new row fixes


def proposal_approve(*, proposal: MappingProposal, actor) -> Approval:
    """Create the proposed row (validated again: the ERP and the table may have moved on), mark the
    proposal approved, and queue a retry of its exception and of every other one the row fixes.
    Approving twice creates one row: the second finds the proposal decided."""
    proposal = MappingProposal.objects.select_related("proposed_by", "decided_by").get(pk=proposal.pk)
    if not proposal.is_pending:
        raise ProposalRefused(_decided_message(proposal))
    spec = get_table(proposal.table)
    # Asked outside the transaction: the ERP check is a network call, the lock is not held across it.
    form = spec.form(data=dict(proposal.values))
    if not form.is_valid():
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        raise ProposalRefused(f"Cannot approve {spec.noun} {proposal.key}: {problems}.")
    proposer = proposal.proposed_by.get_username() if proposal.proposed_by else "someone"
    try:
        with transaction.atomic():
            locked = _lock_pending(proposal, MappingProposal.Status.APPROVED)
            row = services.mapping_save(form=form, actor=actor, reason=f"Proposal #{locked.pk} by {proposer}, approved")
            locked.status = MappingProposal.Status.APPROVED
            locked.decided_by = actor
            locked.decided_at = timezone.now()
            locked.mapping_id = row.pk
            locked._history_user = actor
            locked.save()
            if locked.exception_id:
                exception_comment(
                    record=locked.exception, actor=actor,
                    note=f"Approved the proposed mapping {proposal_summary(locked)}; retrying this exception.",
                )
    except IntegrityError:  # an admin added the same row meanwhile
        raise ProposalRefused(f"Cannot approve {spec.noun} {proposal.key}: that row was just added by someone else.") from None
    records = {r.pk: r for r in services.affected_exceptions(row)}
    if locked.exception_id and locked.exception.is_active:
        records.setdefault(locked.exception_id, locked.exception)
    job = exceptions_retry_queue(records=list(records.values()), actor=actor, label=f"{spec.noun} {proposal.key}")
    log.info("mapping proposal %s approved by %s", locked.pk, actor)
    return Approval(locked, row, job)


def proposal_reject(*, proposal: MappingProposal, actor, reason: str) -> MappingProposal:
    reason = (reason or "").strip()
    if not reason:
        raise ProposalRefused("Say why the proposal is rejected: the person who proposed it reads this.")
    with transaction.atomic():
        locked = _lock_pending(proposal, MappingProposal.Status.REJECTED)
        locked.status = MappingProposal.Status.REJECTED
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.note = reason
        locked._history_user = actor
        locked.save()
        if locked.exception_id:
            exception_comment(
                record=locked.exception, actor=actor,
                note=f"Rejected the proposed mapping {proposal_summary(locked)}: {reason}",
            )
    log.info("mapping proposal %s rejected by %s", locked.pk, actor)
    return locked
