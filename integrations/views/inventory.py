"""Inventory health: per SKU/location ERP ATS vs what the storefront shows, run history with live
progress, a drift chart, and the manual full-sync button (ops, e-commerce or admin)."""
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import ADMIN, ECOMMERCE, OPS, has_role, role_required

from ..models import InventoryDriftSample, InventoryLevel, InventorySyncRun, Connection
from ..models.inventory import StorefrontLocation

SYNC_ROLES = (OPS, ECOMMERCE, ADMIN)


def _drift_chart(samples: list) -> dict:
    """Points for an inline SVG polyline (oldest left), drawn server-side."""
    samples = list(reversed(samples))
    width, height = 300, 60
    peak = max([s.levels_drifted for s in samples] + [1])
    step = width / max(len(samples) - 1, 1)
    xy = [(f"{i * step:.1f}", f"{height - (s.levels_drifted / peak) * (height - 4):.1f}") for i, s in enumerate(samples)]
    points = " ".join(f"{x},{y}" for x, y in xy)
    return {"points": points, "last_xy": xy[-1] if xy else None, "peak": peak, "width": width, "height": height, "count": len(samples),
            "last": samples[-1] if samples else None}


@require_GET
def inventory_health(request):
    levels = InventoryLevel.objects.select_related("connection")
    q = request.GET.get("q", "").strip()
    if q:
        levels = levels.filter(Q(storefront_sku__icontains=q) | Q(erp_item_code__icontains=q))
    connection = request.GET.get("connection", "")
    if connection:
        levels = levels.filter(connection__code=connection)
    if request.GET.get("show") == "drift":
        levels = levels.filter(~Q(storefront_value=F("erp_ats")) | Q(storefront_value__isnull=True) | ~Q(last_error=""))
    page = Paginator(levels, 50).get_page(request.GET.get("page"))
    page.object_list = _with_location_names(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page, "query": query.urlencode(), "q": q, "connection": connection, "show": request.GET.get("show", ""),
        "connections": Connection.objects.storefronts().filter(active=True),
        "runs": InventorySyncRun.objects.select_related("connection")[:15],
        "chart": _drift_chart(list(InventoryDriftSample.objects.all()[:30])),
        "can_sync": has_role(request.user, *SYNC_ROLES),
        "nav": "inventory",
    }
    return render_page(request, "integrations/inventory.html", context, fragment="level-table")


def _with_location_names(levels: list[InventoryLevel]) -> list[InventoryLevel]:
    """Each level's `location_name`: what the storefront calls the location (recorded by the last stock
    push's location check), or the id as the mapping holds it when no push has read the name yet."""
    names = StorefrontLocation.objects.names(lv.connection_id for lv in levels)
    for lv in levels:
        lv.location_name = names.get((lv.connection_id, lv.storefront_location), lv.storefront_location)
    return levels


@require_GET
def inventory_level(request: HtmxHttpRequest, pk: int):
    """One SKU at one location: the figures, where they come from, and what is open about the SKU."""
    from exceptions_queue.models import ExceptionRecord

    level = get_object_or_404(InventoryLevel.objects.select_related("connection"), pk=pk)
    _with_location_names([level])
    context = {
        "level": level,
        "exceptions": ExceptionRecord.objects.filter(sku=level.storefront_sku, status__in=ExceptionRecord.ACTIVE_STATUSES)[:20],
        "nav": "inventory",
    }
    return render(request, "integrations/inventory_level.html", context)


@require_GET
def inventory_run_progress(request, pk: int):
    run = get_object_or_404(InventorySyncRun.objects.select_related("connection"), pk=pk)
    return render(request, "integrations/inventory.html#run-row", {"run": run})


@require_POST
@role_required(*SYNC_ROLES, message="Only ops, e-commerce or admin may start a full inventory sync.")
def inventory_sync(request: HtmxHttpRequest):
    connection = get_object_or_404(Connection.objects.storefronts(), code=request.POST.get("connection", ""), active=True)
    from ..flows.inventory import inventory_sync_start

    run = inventory_sync_start(connection=connection, trigger="manual", user=request.user)
    if request.htmx:
        return render(request, "integrations/inventory.html#run-row", {"run": run})
    return redirect("inventory")
