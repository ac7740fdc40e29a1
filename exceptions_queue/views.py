"""Triage screens: the team inbox, the exception (page or drawer), groups by cause, bulk actions.

Every URL is a full page on its own; an HTMX request to it gets the named partial instead."""
from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config.htmx import wants_fragment
from config.roles import has_role

from . import registry
from .filters import ExceptionFilter, inbox_defaults, team_scope
from .forms import AssignForm, BulkForm, NoteForm, team_members
from .models import BulkJob, ExceptionRecord
from .paging import DEFAULT_SORT, SORTS, keyset_page
from .services import (
    exception_assign,
    exception_comment,
    exception_ignore,
    exception_reopen,
    exception_resolve,
    exceptions_bulk_apply,
    exceptions_retry_queue,
)

CHANGED = "exceptionsChanged"
BULK_LIMIT = 10_000


_fragment = wants_fragment  # an HTMX swap gets the partial; a history restore the whole page


def _get_exception_for_user(request, pk: int) -> tuple[ExceptionRecord, bool]:
    """Everyone signed in may read; only the owning team (or admin) may act."""
    record = get_object_or_404(ExceptionRecord.objects.select_related("order", "assignee"), pk=pk)
    return record, has_role(request.user, record.team)


def _get_rw_exception_for_user(request, pk: int) -> ExceptionRecord:
    record, rw = _get_exception_for_user(request, pk)
    if not rw:
        raise PermissionDenied("Only the owning team may act on this exception.")
    return record


def _query(data, drop=("after", "before")) -> str:
    data = data.copy()
    for name in drop:
        data.pop(name, None)
    return data.urlencode()


# --- inbox ------------------------------------------------------------------------------------

@require_GET
def exception_list(request):
    data = inbox_defaults(request, request.GET)
    # the list never shows payloads: leave the JSON columns (ours and the order's) in the database
    base = ExceptionRecord.objects.select_related("order", "assignee").defer(
        "context", "retry_args", "message", "last_error", "order__payload", "order__erp_payload"
    )
    filterset = ExceptionFilter(data, queryset=base, request=request)
    sort = data.get("sort") if data.get("sort") in SORTS else DEFAULT_SORT
    grouped = data.get("view") == "groups"
    context = {
        "filter": filterset,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _, _) in SORTS.items()],
        "grouped": grouped,
        "query": _query(data),
        "type_labels": dict(registry.choices()),
        "can_act": bool(team_scope(request.user)) or has_role(request.user),
        "nav": "exceptions",
    }
    if grouped:
        context["groups"] = list(
            filterset.qs.order_by()
            .values("fingerprint", "type_code", "team")
            .annotate(n=Count("id"), orders=Count("order", distinct=True), last=Max("last_seen"), title=Max("title"))
            .order_by("-n", "fingerprint")[:100]
        )
    else:
        context["page"] = keyset_page(filterset.qs, sort=sort, after=data.get("after"), before=data.get("before"))
    # sidebar: open exceptions per type within the chosen team, whatever the other filters say
    counts = ExceptionFilter({"team": data.get("team", ""), "status": "active"}, queryset=ExceptionRecord.objects.all(), request=request).qs
    type_query = data.copy()
    for name in ("after", "before", "type"):
        type_query.pop(name, None)
    context["type_counts"] = [
        (row["type_code"], context["type_labels"].get(row["type_code"], row["type_code"]), row["n"])
        for row in counts.order_by().values("type_code").annotate(n=Count("*")).order_by("-n", "type_code")
    ]
    context["type_query"] = type_query.urlencode()
    template = "exceptions_queue/list.html#results" if _fragment(request) else "exceptions_queue/list.html"
    return render(request, template, context)


@require_GET
def nav_badge(request):
    return render(request, "exceptions_queue/_nav_badge.html")


# --- one exception ----------------------------------------------------------------------------

def _render_detail(request, record: ExceptionRecord, rw: bool, **extra):
    context = {
        "exc": record,
        "exc_type": record.exception_type,
        "rw": rw,
        "activity": record.activity.select_related("actor"),
        "members": team_members(record.team) if rw and record.is_active else [],
        "group_open": ExceptionRecord.objects.filter(
            fingerprint=record.fingerprint, status__in=ExceptionRecord.ACTIVE_STATUSES
        ).count(),
        "context_json": json.dumps(record.context, indent=2, sort_keys=True, default=str),
        "retry_args_json": json.dumps(record.retry_args, indent=2, sort_keys=True, default=str),
        "nav": "exceptions",
        **extra,
    }
    template = "exceptions_queue/detail.html#panel" if _fragment(request) else "exceptions_queue/detail.html"
    return render(request, template, context)


@require_GET
def exception_detail(request, pk: int):
    record, rw = _get_exception_for_user(request, pk)
    return _render_detail(request, record, rw)


@require_POST
def exception_act(request, pk: int, action: str):
    """assign / comment / retry / resolve / ignore / reopen one exception."""
    record = _get_rw_exception_for_user(request, pk)
    form, job = None, None
    if action == "assign":
        form = AssignForm(request.POST, team=record.team, user=request.user)
        if form.is_valid():
            exception_assign(record=record, assignee=form.cleaned_data["assignee"], actor=request.user)
    elif action in ("comment", "resolve", "ignore"):
        form = NoteForm(request.POST)
        if form.is_valid():
            note = form.cleaned_data["note"]
            if action == "comment":
                exception_comment(record=record, note=note, actor=request.user)
            elif action == "resolve":
                exception_resolve(record=record, note=note, actor=request.user)
            else:
                exception_ignore(record=record, reason=note, actor=request.user)
    elif action == "retry":
        job = exceptions_retry_queue(records=[record], actor=request.user, label=record.title)
    elif action == "reopen":
        exception_reopen(record=record, actor=request.user, note=request.POST.get("note", ""))
    else:
        raise Http404("unknown action")
    ok = form is None or not form.errors
    record = ExceptionRecord.objects.select_related("order", "assignee").get(pk=record.pk)
    if job is not None:
        job.refresh_from_db()
    if not _fragment(request) and ok:
        messages.success(request, _done_message(action, job))
        return redirect("exception-detail", pk=record.pk)
    response = _render_detail(request, record, True, form=form, failed_action=None if ok else action, job=job)
    if ok:
        response["HX-Trigger"] = CHANGED
    return response


def _done_message(action: str, job: BulkJob | None) -> str:
    if job is not None:
        if job.is_finished:
            return f"Retried: {job.succeeded} resolved, {job.failed} still failing."
        return "Retry queued: this page shows the outcome when it finishes."
    return {"assign": "Assignment saved.", "comment": "Comment added.", "resolve": "Resolved.",
            "ignore": "Ignored.", "reopen": "Reopened."}.get(action, "Done.")


# --- groups and bulk --------------------------------------------------------------------------

@require_GET
def exception_group(request):
    fingerprint = request.GET.get("fingerprint", "")
    rows = ExceptionRecord.objects.filter(fingerprint=fingerprint).select_related("order", "assignee")
    sample = rows.order_by("-last_seen").first()
    if sample is None:
        raise Http404("no exceptions with this cause")
    active = rows.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).order_by("-last_seen", "-id")
    active_rows = list(active[:500])
    context = {
        "fingerprint": fingerprint,
        "sample": sample,
        "exc_type": sample.exception_type,
        "rw": has_role(request.user, sample.team),
        "active_rows": active_rows,
        "active_count": active.count(),
        "order_count": active.exclude(order=None).values("order").distinct().count(),
        "recent_closed": list(rows.exclude(status__in=ExceptionRecord.ACTIVE_STATUSES).order_by("-resolved_at")[:20]),
        "members": team_members(sample.team),
        "nav": "exceptions",
    }
    template = "exceptions_queue/group.html#group-body" if _fragment(request) else "exceptions_queue/group.html"
    return render(request, template, context)


def _bulk_assignee(request, value: str, teams: set[str]):
    value = (value or "").strip()
    if not value:
        return None
    if value == "me":
        return request.user
    for team in teams:
        member = team_members(team).filter(username=value).first()
        if member is None:
            raise PermissionDenied(f"{value} is not a member of {team}.")
    return member


@require_POST
def exceptions_bulk(request):
    """An action over a selection (ids) or a whole group (fingerprint) of active exceptions."""
    form = BulkForm(request.POST)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("exceptions")
    if not form.is_valid():
        error = " ".join(e for errors in form.errors.values() for e in errors)
        if not _fragment(request):
            messages.error(request, error)
            return HttpResponseRedirect(next_url)
        return render(request, "exceptions_queue/_bulk_status.html", {"error": error})
    data = form.cleaned_data
    qs = ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    if data["ids"]:
        qs = qs.filter(pk__in=data["ids"])
    if data["fingerprint"]:
        qs = qs.filter(fingerprint=data["fingerprint"])
    records = list(qs.order_by("last_seen", "id")[:BULK_LIMIT])
    teams = {r.team for r in records}
    if any(not has_role(request.user, team) for team in teams):
        raise PermissionDenied("The selection holds exceptions of a team you do not act for.")
    action, job, changed = data["action"], None, 0
    label = data["fingerprint"] or f"{len(records)} selected exceptions"
    if action == "retry":
        job = exceptions_retry_queue(records=records, actor=request.user, label=label)
        job.refresh_from_db()
    else:
        assignee = _bulk_assignee(request, data["assignee"], teams) if action == "assign" else None
        changed = exceptions_bulk_apply(
            records=records, action=action, actor=request.user, note=data["note"].strip(), assignee=assignee
        )
    verb = dict(BulkForm.ACTIONS)[action].lower()
    message = _done_message("retry", job) if job else f"{changed} exception{'s' if changed != 1 else ''}: {verb} done."
    if not _fragment(request):
        messages.success(request, message)
        return HttpResponseRedirect(next_url)
    response = render(request, "exceptions_queue/_bulk_status.html", {"job": job, "message": message})
    response["HX-Trigger"] = CHANGED
    return response


@require_GET
def bulk_job(request, pk: int):
    job = get_object_or_404(BulkJob, pk=pk)
    if not _fragment(request):
        return render(request, "exceptions_queue/job.html", {"job": job, "nav": "exceptions"})
    response = render(request, "exceptions_queue/_job.html", {"job": job})
    if job.is_finished:
        response["HX-Trigger"] = f"{CHANGED}, exceptionsJobDone"
    return response
