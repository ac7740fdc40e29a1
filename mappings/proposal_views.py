"""Mapping proposals: the exception's team proposes the row it needs (prefilled from the exception);
admins approve it with one click or reject it with a reason, under Mappings → Proposals.

Everyone signed in may read the proposals; `role_required` guards proposing and deciding."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.roles import ECOMMERCE, FINANCE, OPS, has_role, role_required
from exceptions_queue.models import ExceptionRecord

from . import proposals
from .forms import ProposalCommentForm, ProposalRejectForm, ProposalSourceForm
from .models import MappingProposal
from .tables import TABLES


def _source_exception(request) -> ExceptionRecord | None:
    """The exception named by ?exception=; None when the number is not one (the page says so)."""
    form = ProposalSourceForm(request.GET)
    if not form.is_valid():
        return None
    return get_object_or_404(
        ExceptionRecord.objects.select_related("order__connection"), pk=form.cleaned_data["exception"]
    )


def _propose_page(request, ctx: dict, status: int = 200):
    return render(request, "mappings/propose.html", {"nav": "mappings", "tables": TABLES.values(), **ctx}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(OPS, FINANCE, ECOMMERCE, message="Only ops, finance, e-commerce or admin may propose a mapping.")
def mapping_propose(request):
    record = _source_exception(request)
    if record is None:
        return _propose_page(request, {"problem": "Open this page from an exception: its link names the exception."}, 400)
    if not has_role(request.user, record.team):
        raise PermissionDenied(f"Only the {record.team} team (or an admin) may propose a mapping for this exception.")
    target = proposals.proposal_target(record)
    ctx = {"exc": record, "target": target}
    if target is None:
        ctx["problem"] = "No mapping row fixes this exception: follow its runbook instead."
        return _propose_page(request, ctx, 400)
    if not record.is_active:
        ctx["problem"] = f"This exception is already {record.get_status_display().lower()}: nothing to propose."
        return _propose_page(request, ctx, 400)
    spec = target.spec
    ctx.update(spec=spec, existing=proposals.existing_row(target),
               pending=proposals.pending_proposal_for(table=spec.slug, key=target.key))
    if request.method == "GET":
        ctx.update(form=spec.form(initial=target.initial), comment_form=ProposalCommentForm())
        return _propose_page(request, ctx)
    form = spec.form(data=request.POST)
    comment_form = ProposalCommentForm(request.POST)
    ctx.update(form=form, comment_form=comment_form)
    if not (form.is_valid() and comment_form.is_valid()):
        return _propose_page(request, ctx, 400)
    try:
        proposal = proposals.proposal_create(
            table=spec.slug, form=form, actor=request.user, record=record,
            comment=comment_form.cleaned_data["comment"],
        )
    except proposals.ProposalRefused as exc:
        ctx["refused"] = str(exc)
        return _propose_page(request, ctx, 400)
    messages.success(
        request,
        f"Proposed the {spec.noun} {proposal.key}. An admin approves it under Mappings → Proposals; "
        "this exception is retried then, and its timeline says what was decided.",
    )
    return redirect("exception-detail", pk=record.pk)


def _proposals_page(request, *, error: str = "", status: int = 200, reject_form=None, rejecting=None):
    base = MappingProposal.objects.select_related("proposed_by", "decided_by", "exception")
    pending = list(base.filter(status=MappingProposal.Status.PENDING).order_by("proposed_at", "id"))
    decided = list(base.exclude(status=MappingProposal.Status.PENDING).order_by("-decided_at", "-id")[:50])
    for proposal in pending + decided:
        proposal.shown_values = proposals.proposed_values(proposal)
        proposal.spec = TABLES[proposal.table]
    return render(request, "mappings/proposals.html", {
        "pending": pending, "decided": decided, "rw": has_role(request.user), "nav": "mappings",
        "tables": TABLES.values(), "proposals_tab": True, "error": error,
        "reject_form": reject_form, "rejecting": rejecting,
    }, status=status)


@require_GET
def mapping_proposals(request):
    return _proposals_page(request)


def _get_proposal(pk: int) -> MappingProposal:
    return get_object_or_404(MappingProposal, pk=pk)


ADMINS_ONLY = "Only admins may approve or reject mapping proposals."


@require_POST
@role_required(message=ADMINS_ONLY)
def mapping_proposal_approve(request, pk: int):
    proposal = _get_proposal(pk)
    try:
        approval = proposals.proposal_approve(proposal=proposal, actor=request.user)
    except proposals.ProposalRefused as exc:
        return _proposals_page(request, error=str(exc), status=409)
    spec = TABLES[approval.proposal.table]
    job = approval.job
    retried = f" Retrying the {job.total} exception{'s' if job.total != 1 else ''} it fixes." if job.total else ""
    messages.success(request, f"Approved: the {spec.noun} {approval.proposal.key} is added.{retried}")
    url = reverse("mapping-detail", args=[spec.slug, approval.row.pk])
    return redirect(f"{url}?job={job.pk}" if job.total else url)


@require_POST
@role_required(message=ADMINS_ONLY)
def mapping_proposal_reject(request, pk: int):
    proposal = _get_proposal(pk)
    form = ProposalRejectForm(request.POST)
    if not form.is_valid():
        return _proposals_page(request, reject_form=form, rejecting=proposal.pk, status=400,
                               error=" ".join(e for errors in form.errors.values() for e in errors))
    try:
        proposals.proposal_reject(proposal=proposal, actor=request.user, reason=form.cleaned_data["reason"])
    except proposals.ProposalRefused as exc:
        return _proposals_page(request, error=str(exc), status=409)
    messages.success(request, f"Rejected the proposed {TABLES[proposal.table].noun} {proposal.key}.")
    return redirect("mapping-proposals")
