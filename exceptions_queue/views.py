"""Triage screens: the team inbox, the exception (page or drawer), groups by cause, bulk actions.

Every URL is a full page on its own; an HTMX request to it gets the named partial instead."""
from __future__ import annotations

import json
from collections import Counter

from django.contrib import messages
from django.contrib.auth import get_user_model
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
from .filters import ExceptionFilter, inbox_defaults
from .forms import AssignForm, BulkForm, NoteForm, team_members
from .models import BulkJob, ExceptionRecord, refused_summary
from .paging import DEFAULT_SORT, SORTS, keyset_page
from .registry import Team
from .templatetags.exceptions_tags import system_label, type_label
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


def _acting_teams(user) -> set[str]:
    """The teams whose exceptions this user may act on (every team for admin)."""
    return {team for team, _ in Team.CHOICES if has_role(user, team)}


def _refusal(record: ExceptionRecord, teams: set[str]) -> str:
    """Why this user may not act on this row ("owned by finance", "already closed"), or ""."""
    if record.team not in teams:
        return f"owned by {dict(Team.CHOICES).get(record.team, record.team).lower()}"
    if not record.is_active:
        return "already closed"
    return ""


def _split_by_access(user, records) -> tuple[list[ExceptionRecord], dict[str, int]]:
    """The rows the user may act on, and the others counted by the reason they are refused."""
    teams = _acting_teams(user)
    allowed, refused = [], Counter()
    for record in records:
        reason = _refusal(record, teams)
        if reason:
            refused[reason] += 1
        else:
            allowed.append(record)
    return allowed, dict(refused)


def _query(data, drop=("after", "before")) -> str:
    data = data.copy()
    for name in drop:
        data.pop(name, None)
    return data.urlencode()


# --- inbox ------------------------------------------------------------------------------------

def _label_choices(form) -> None:
    """The type and system filters name their choices in words ("Unknown SKU", "ERP"), not codes."""
    for name, label in (("type", type_label), ("system", system_label)):
        field = form.fields.get(name)
        if field is not None:
            field.choices = [(value, label(value) if value else text) for value, text in field.choices]


@require_GET
def exception_list(request):
    data = inbox_defaults(request, request.GET)
    # the list never shows payloads: leave the JSON columns (ours and the order's) in the database
    base = ExceptionRecord.objects.select_related("order", "assignee").defer(
        "context", "retry_args", "message", "last_error", "order__payload", "order__erp_payload"
    )
    filterset = ExceptionFilter(data, queryset=base, request=request)
    _label_choices(filterset.form)
    sort = data.get("sort") if data.get("sort") in SORTS else DEFAULT_SORT
    grouped = data.get("view") == "groups"
    context = {
        "filter": filterset,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _, _) in SORTS.items()],
        "grouped": grouped,
        "query": _query(data),
        "type_labels": {code: type_label(code) for code, _ in registry.choices()},
        "can_act": False,
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
        page = keyset_page(filterset.qs, sort=sort, after=data.get("after"), before=data.get("before"))
        teams = _acting_teams(request.user)
        for row in page.rows:  # a row offers a checkbox only when the user may act on it
            row.refusal = _refusal(row, teams)
        selectable = [row for row in page.rows if not row.refusal]
        context["page"] = page
        context["can_act"] = bool(selectable)
        context["can_retry_selection"] = any(row.can_retry for row in selectable)
    # sidebar: open exceptions per type within the chosen team, whatever the other filters say
    counts = ExceptionFilter({"team": data.get("team", ""), "status": "active"}, queryset=ExceptionRecord.objects.all(), request=request).qs
    type_query = data.copy()
    for name in ("after", "before", "type"):
        type_query.pop(name, None)
    context["type_counts"] = [
        (row["type_code"], type_label(row["type_code"]), row["n"])
        for row in counts.order_by().values("type_code").annotate(n=Count("*")).order_by("-n", "type_code")
    ]
    context["type_query"] = type_query.urlencode()
    template = "exceptions_queue/list.html#results" if _fragment(request) else "exceptions_queue/list.html"
    return render(request, template, context)


@require_GET
def nav_badge(request):
    return render(request, "exceptions_queue/_nav_badge.html")


# --- one exception ----------------------------------------------------------------------------

def _in_drawer(request) -> bool:
    """The panel is swapped into the inbox's drawer (its heading is then an h2 under the page's h1)."""
    if not _fragment(request):
        return False
    return request.htmx.target == "drawer" or (request.POST if request.method == "POST" else request.GET).get("drawer") == "1"


def _timeline(record: ExceptionRecord) -> list:
    """The audit trail, with runs of identical "recurred" lines (written before recurrences only
    counted) folded into one line that says how many and since when."""
    entries = []
    for entry in record.activity.select_related("actor"):
        last = entries[-1] if entries else None
        if (last is not None and entry.action == "recurred" and last.action == "recurred"
                and last.note == entry.note and last.actor_id == entry.actor_id):
            last.repeats += 1
            last.last_at = entry.at
            continue
        entry.repeats, entry.last_at = 1, entry.at
        entries.append(entry)
    return entries


def _render_detail(request, record: ExceptionRecord, rw: bool, **extra):
    context = {
        "exc": record,
        "exc_type": record.exception_type,
        "rw": rw,
        "drawer": _in_drawer(request),
        "activity": _timeline(record),
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
        refused = f" · {job.refused_summary}" if job.refused_summary else ""
        if job.is_finished:
            return f"Retried: {job.succeeded} resolved, {job.failed} still failing{refused}."
        return f"Retry queued: this page shows the outcome when it finishes{refused}."
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


PAST = {"assign": "assigned", "retry": "retried", "resolve": "resolved", "ignore": "ignored"}


def _bulk_assignee(request, value: str):
    """The person a bulk "assign" names: '' unassigns, 'me' is the signed-in user."""
    value = (value or "").strip()
    if not value:
        return None
    if value == "me":
        return request.user
    return get_user_model().objects.filter(is_active=True, username=value).first() or value


def _bulk_outcome(done: int, action: str, refused: dict[str, int]) -> str:
    """ "3 resolved · 2 refused: owned by finance"."""
    parts = [f"{done} {PAST[action]}"]
    if refused:
        parts.append(refused_summary(refused))
    return " · ".join(parts)


@require_POST
def exceptions_bulk(request):
    """An action over a selection (ids) or a whole group (fingerprint) of active exceptions. Rows the
    user may not act on (another team's, already closed) are left alone and reported as refused."""
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
    qs = ExceptionRecord.objects.all()
    if data["ids"]:
        qs = qs.filter(pk__in=data["ids"])  # a chosen row closed meanwhile is reported, not hidden
    else:
        qs = qs.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    if data["fingerprint"]:
        qs = qs.filter(fingerprint=data["fingerprint"])
    records, refused = _split_by_access(request.user, qs.order_by("last_seen", "id")[:BULK_LIMIT])
    action, job, changed = data["action"], None, 0
    refused = Counter(refused)
    if action == "retry":
        retryable = [r for r in records if r.can_retry]
        if len(retryable) < len(records):
            refused["cannot be retried"] += len(records) - len(retryable)
        label = data["fingerprint"] or f"{len(retryable)} selected exceptions"
        job = exceptions_retry_queue(records=retryable, actor=request.user, label=label, refused=dict(refused))
        job.refresh_from_db()
        message = _done_message("retry", job)
    else:
        assignee = _bulk_assignee(request, data["assignee"]) if action == "assign" else None
        if action == "assign" and assignee is not None:
            if isinstance(assignee, str):  # no such user: nothing to assign them
                refused[f"{assignee} is not a member of the team"] += len(records)
                records = []
            elif assignee != request.user:
                member_of = _acting_teams(assignee)
                keep = [r for r in records if r.team in member_of]
                for r in records:
                    if r.team not in member_of:
                        refused[f"{assignee.get_username()} is not in {dict(Team.CHOICES).get(r.team, r.team).lower()}"] += 1
                records = keep
        changed = exceptions_bulk_apply(
            records=records, action=action, actor=request.user, note=data["note"].strip(), assignee=assignee
        )
        message = _bulk_outcome(changed, action, dict(refused))
    if not _fragment(request):
        (messages.warning if refused else messages.success)(request, message)
        return HttpResponseRedirect(next_url)
    response = render(request, "exceptions_queue/_bulk_status.html",
                      {"job": job, "message": message, "refused": bool(refused)})
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
