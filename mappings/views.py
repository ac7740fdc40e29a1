"""Mapping screens: list with search/filters, inline edit (HTMX), add, delete, history + revert,
CSV import (dry run, then all-or-nothing apply) and export, retry of affected exceptions (queued,
the page follows each one's outcome), health. Proposals from exceptions: proposal_views.py.

Everyone signed in may read; only admin may change (`_require_admin`, `_get_rw_row_for_user`).
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import wants_fragment
from config.roles import has_role
from exceptions_queue.models import BulkJob

from . import csv_io, services
from .health import catalogue_panel
from .tables import TABLES, TableSpec, get_table

PAGE_SIZE = 50


def _can_change(request) -> bool:
    return has_role(request.user)  # no roles named: admin only


def _require_admin(request) -> None:
    if not _can_change(request):
        raise PermissionDenied("Only admins may change mappings.")


def _get_row_for_user(request, table: str, pk: int) -> tuple[TableSpec, Model, bool]:
    spec = get_table(table)
    row = get_object_or_404(spec.queryset(), pk=pk)
    return spec, row, _can_change(request)


def _get_rw_row_for_user(request, table: str, pk: int) -> tuple[TableSpec, Model]:
    spec, row, rw = _get_row_for_user(request, table, pk)
    if not rw:
        raise PermissionDenied("Only admins may change mappings.")
    return spec, row


def _row_context(request, spec: TableSpec, row: Model, **extra) -> dict:
    return {"spec": spec, "row": row, "cells": spec.cells(row), "rw": _can_change(request), "nav": "mappings", **extra}


@require_GET
def mapping_index(request):
    cards = [(spec, spec.model.objects.count()) for spec in TABLES.values()]
    return render(request, "mappings/index.html", {
        "cards": cards, "tables": TABLES.values(), "nav": "mappings", "rw": _can_change(request),
    })


@require_GET
def mapping_list(request, table: str):
    spec = get_table(table)
    filterset = spec.filterset(request.GET or None, queryset=spec.queryset())
    qs = filterset.qs if filterset.is_bound and filterset.is_valid() else spec.queryset()
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(row, spec.cells(row)) for row in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {
        "spec": spec, "tables": TABLES.values(), "filter": filterset, "page": page, "rows": rows,
        "query": query.urlencode(), "rw": _can_change(request), "nav": "mappings",
    }
    template = "mappings/list.html#table-section" if wants_fragment(request) else "mappings/list.html"
    return render(request, template, ctx)


@require_GET
def mapping_row(request, table: str, pk: int):
    spec, row, rw = _get_row_for_user(request, table, pk)
    if not request.htmx:
        return redirect("mapping-detail", table=spec.slug, pk=row.pk)
    return render(request, "mappings/_row.html", _row_context(request, spec, row))


@require_http_methods(["GET", "POST"])
def mapping_edit(request, table: str, pk: int):
    spec, row = _get_rw_row_for_user(request, table, pk)
    if request.method == "GET":
        form = spec.form(instance=row)
    else:
        form = spec.form(data=request.POST, instance=row)
        if form.is_valid():
            row = services.mapping_save(form=form, actor=request.user)
            row = spec.queryset().get(pk=row.pk)
            affected = services.affected_exceptions(row).count()
            if request.htmx:
                response = render(request, "mappings/_row.html", _row_context(request, spec, row, saved=True, affected=affected))
                response["HX-Trigger"] = "mappingsChanged"
                return response
            messages.success(request, _saved_message(spec, row, affected))
            return redirect("mapping-detail", table=spec.slug, pk=row.pk)
    template = "mappings/_row_form.html" if request.htmx else "mappings/edit.html"
    return render(request, template, _row_context(request, spec, row, form=form))


def _saved_message(spec: TableSpec, row: Model, affected: int) -> str:
    text = f"Saved {spec.noun} {spec.label(row)}."
    if affected:
        text += f" It affects {affected} open exception{'s' if affected != 1 else ''}: retry them below."
    return text


@require_http_methods(["GET", "POST"])
def mapping_add(request, table: str):
    spec = get_table(table)
    _require_admin(request)
    if request.method == "POST":
        form = spec.form(data=request.POST)
        if form.is_valid():
            row = services.mapping_save(form=form, actor=request.user)
            affected = services.affected_exceptions(row).count()
            messages.success(request, _saved_message(spec, row, affected))
            return redirect("mapping-detail", table=spec.slug, pk=row.pk)
    else:
        form = spec.form(initial=request.GET.dict() or None)
    return render(request, "mappings/add.html", {"spec": spec, "form": form, "nav": "mappings", "rw": True})


@require_POST
def mapping_delete(request, table: str, pk: int):
    spec, row = _get_rw_row_for_user(request, table, pk)
    label = spec.label(row)
    services.mapping_delete(row=row, actor=request.user)
    if request.htmx:
        response = HttpResponse("")  # the row's <tr> is swapped away
        response["HX-Trigger"] = "mappingsChanged"
        return response
    messages.success(request, f"Deleted {spec.noun} {label}.")
    return redirect("mapping-list", table=spec.slug)


@require_GET
def mapping_detail(request, table: str, pk: int):
    spec, row, rw = _get_row_for_user(request, table, pk)
    ctx = _row_context(
        request, spec, row,
        history=services.mapping_history(row),
        identity=spec.slug == "skus",
        **_affected(row, _retry_job(request)),
    )
    return render(request, "mappings/detail.html", ctx)


@require_POST
def mapping_revert(request, table: str, pk: int, history_id: int):
    spec, row = _get_rw_row_for_user(request, table, pk)
    if not row.history.filter(history_id=history_id).exists():
        raise PermissionDenied("That version does not belong to this row.")
    row = services.mapping_revert(row=row, history_id=history_id, actor=request.user)
    messages.success(request, f"Reverted {spec.noun} {spec.label(row)} to version {history_id}.")
    return redirect("mapping-detail", table=spec.slug, pk=row.pk)


def _retry_job(request):
    """The retry job named by ?job=, or None; a job number that is not one is a 400."""
    raw = request.GET.get("job", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadRequest("job must be a job number.")
    return get_object_or_404(BulkJob, pk=int(raw), action="retry")


def _affected(row: Model, job=None) -> dict:
    """What the _affected fragment shows: the open exceptions, and each one of a retry job."""
    affected = services.affected_exceptions(row)
    return {
        "job": job, "job_rows": services.retry_job_rows(job) if job is not None else None,
        "affected": affected.count(), "affected_list": affected[:50],
    }


def _affected_context(request, spec: TableSpec, row: Model, job=None) -> dict:
    return {"spec": spec, "row": row, "rw": _can_change(request), **_affected(row, job)}


@require_POST
def mapping_retry_exceptions(request, table: str, pk: int):
    """Queue a retry of the open exceptions the row affects; the fragment then follows the job."""
    spec, row = _get_rw_row_for_user(request, table, pk)
    job = services.affected_exceptions_retry(row=row, actor=request.user, label=f"{spec.noun} {spec.label(row)}")
    if not request.htmx:
        messages.success(request, f"Retrying {job.total} exception{'s' if job.total != 1 else ''}: each one's outcome shows below.")
        return redirect(f"{reverse('mapping-detail', args=[spec.slug, row.pk])}?job={job.pk}")
    job.refresh_from_db()  # a synchronous queue (tests, Q_SYNC) has already run it
    response = render(request, "mappings/_affected.html", _affected_context(request, spec, row, job))
    response["HX-Trigger"] = "exceptionsChanged"
    return response


@require_GET
def mapping_affected(request, table: str, pk: int):
    """The open exceptions of a row, and the outcome of its retry job (?job=): polled while it runs."""
    spec, row, _rw = _get_row_for_user(request, table, pk)
    job = _retry_job(request)
    if not wants_fragment(request):
        url = reverse("mapping-detail", args=[spec.slug, row.pk])
        return redirect(f"{url}?job={job.pk}" if job else url)
    response = render(request, "mappings/_affected.html", _affected_context(request, spec, row, job))
    if job is not None and job.is_finished:
        response["HX-Trigger"] = "exceptionsChanged"
    return response


@require_GET
def mapping_export(request, table: str):
    spec = get_table(table)
    response = HttpResponse(csv_io.csv_export(spec), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ledgerline-mappings-{spec.slug}.csv"'
    return response


def _uploaded_text(request) -> tuple[str, str]:
    upload = request.FILES.get("file")
    if upload is not None:
        raw = upload.read(5 * 1024 * 1024 + 1)
        if len(raw) > 5 * 1024 * 1024:
            return "", "The file is larger than 5 MB: split it."
        try:
            return raw.decode("utf-8-sig"), ""
        except UnicodeDecodeError:
            return "", "The file is not UTF-8 text: save it from your spreadsheet as CSV UTF-8."
    text = request.POST.get("csv_text", "")
    return text, "" if text.strip() else "Choose a CSV file to import."


@require_http_methods(["GET", "POST"])
def mapping_import(request, table: str):
    spec = get_table(table)
    _require_admin(request)
    ctx = {"spec": spec, "nav": "mappings", "rw": True}
    if request.method == "GET":
        return render(request, "mappings/import.html", ctx)
    text, problem = _uploaded_text(request)
    if problem:
        ctx["problem"] = problem
        return render(request, "mappings/import.html", ctx, status=400)
    if request.POST.get("action") == "apply":
        try:
            preview = csv_io.csv_apply(spec, text, actor=request.user)
        except csv_io.ImportRejected as exc:
            ctx.update(preview=exc.preview, csv_text=text, rejected_apply=True)
            return render(request, "mappings/import.html", ctx, status=400)
        messages.success(
            request,
            f"Imported {spec.title}: {len(preview.added)} added, {len(preview.changed)} changed, "
            f"{len(preview.unchanged)} unchanged.",
        )
        return redirect("mapping-list", table=spec.slug)
    ctx.update(preview=csv_io.csv_preview(spec, text), csv_text=text)
    return render(request, "mappings/import.html", ctx)


@require_http_methods(["GET", "POST"])
def mapping_health_panel(request):
    """The catalogue check's last run (never a live call to a vendor); POST = "Run now" (queued)."""
    if request.method == "POST":
        if not has_role(request.user, "ecommerce"):
            raise PermissionDenied("Only ecommerce, admin may run the catalogue check.")
        from integrations.drift.services import drift_check_queue

        drift_check_queue(code="catalogue", user=request.user)
        messages.success(request, "The catalogue check is queued; this panel shows its findings once it has run.")
        return redirect("mapping-health")
    return render(request, "mappings/health.html", {"panel": catalogue_panel(), "nav": "mappings",
                                                    "tables": TABLES.values(),
                                                    "can_run": has_role(request.user, "ecommerce")})
