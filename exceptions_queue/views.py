"""Exception list, detail and retry (the full triage screens build on these)."""
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from config.roles import has_role

from .models import ExceptionRecord
from .services import exception_retry


def _get_exception_for_user(request, pk: int) -> tuple[ExceptionRecord, bool]:
    """Everyone signed in may read; only the owning team (or admin) may act."""
    record = get_object_or_404(ExceptionRecord.objects.select_related("order", "assignee"), pk=pk)
    return record, has_role(request.user, record.team)


def _get_rw_exception_for_user(request, pk: int) -> ExceptionRecord:
    record, rw = _get_exception_for_user(request, pk)
    if not rw:
        raise PermissionDenied("Only the owning team may act on this exception.")
    return record


@require_GET
def exception_list(request):
    qs = ExceptionRecord.objects.select_related("order")
    status = request.GET.get("status", "active")
    if status == "active":
        qs = qs.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if request.GET.get("type"):
        qs = qs.filter(type_code=request.GET["type"])
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "exceptions_queue/list.html", {"page": page, "status": status, "nav": "exceptions"})


@require_GET
def exception_detail(request, pk: int):
    record, rw = _get_exception_for_user(request, pk)
    return render(request, "exceptions_queue/detail.html", {"exc": record, "rw": rw, "nav": "exceptions"})


@require_POST
def exception_retry_view(request, pk: int):
    record = _get_rw_exception_for_user(request, pk)
    exception_retry(record=record, actor=request.user)
    record.refresh_from_db()
    template = "exceptions_queue/detail.html#actions" if request.htmx else "exceptions_queue/detail.html"
    response = render(request, template, {"exc": record, "rw": True, "nav": "exceptions"})
    response["HX-Trigger"] = "exceptionsChanged"
    return response


@require_GET
def nav_badge(request):
    return render(request, "exceptions_queue/_nav_badge.html")
