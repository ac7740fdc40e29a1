"""Replenishment review (ops and admins): the planner's recommended purchase orders with filters,
inline quantity edits, approve / reject and bulk approve; each shows its ERP purchase order and
receipts once approved; and the planner's view of a SKU beside the ERP's and the storefront's stock.
Pages read stored rows only: no vendor is called in a page view."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import OPS, role_required

from ..flows import replenishment as flow
from ..models import InventoryLevel, PlannerVariant, Recommendation, RecommendationLine
from ..models.planner import Urgency

S = Recommendation.Status
ROLE_MESSAGE = "Only ops or admin may review replenishment."
SHOWS = {"review": (S.PENDING,), "ordered": (S.APPROVED, S.ORDERED, S.SENT, S.PARTLY_RECEIVED),
         "received": (S.RECEIVED,), "rejected": (S.REJECTED,), "all": tuple(S.values)}
MAX_BULK = 200


def _lines_with_stock(lines: list[RecommendationLine], depot_of) -> list[RecommendationLine]:
    """Each line's `erp_ats` and `storefront_shows` from the stored inventory levels (per ERP item and
    depot: the highest ATS the storefront locations fed by that depot were computed with)."""
    codes = {line.erp_item_code for line in lines if line.erp_item_code}
    stock: dict[tuple[str, str], tuple[int, int | None]] = {}
    for code, warehouse, ats, shows in (InventoryLevel.objects.filter(erp_item_code__in=codes)
                                        .values_list("erp_item_code", "erp_warehouse", "erp_ats", "storefront_value")):
        best_ats, total_shows = stock.get((code, warehouse), (None, None))
        stock[(code, warehouse)] = (ats if best_ats is None else max(best_ats, ats),
                                    shows if total_shows is None else total_shows + (shows or 0))
    for line in lines:
        line.erp_ats, line.storefront_shows = stock.get((line.erp_item_code, depot_of(line)), (None, None))
    return lines


def _recommendations(request) -> tuple:
    recs = Recommendation.objects.select_related("connection", "decided_by").prefetch_related(
        Prefetch("lines", queryset=RecommendationLine.objects.order_by("pk")))
    show = request.GET.get("show", "review")
    recs = recs.filter(status__in=SHOWS.get(show, SHOWS["review"]))
    filters = {name: request.GET.get(name, "").strip() for name in ("vendor", "warehouse", "urgency")}
    if filters["vendor"]:
        recs = recs.filter(vendor=filters["vendor"])
    if filters["warehouse"]:
        recs = recs.filter(warehouse=filters["warehouse"])
    if filters["urgency"] in Urgency.values:
        recs = recs.filter(urgency=filters["urgency"])
    return recs, show, filters


def _card_context(rec: Recommendation, **extra) -> dict:
    lines = _lines_with_stock(list(rec.lines.all()), lambda line: rec.depot)
    return {"rec": rec, "lines": lines, **extra}


def _get_recommendation(pk: int) -> Recommendation:
    return get_object_or_404(Recommendation.objects.select_related("connection", "decided_by"), pk=pk)


@require_GET
@role_required(OPS, message=ROLE_MESSAGE)
def replenishment_list(request: HtmxHttpRequest):
    return _list_page(request)


def _list_page(request: HtmxHttpRequest, *, bulk_note: str = "") -> HttpResponse:
    recs, show, filters = _recommendations(request)
    page = Paginator(recs, 25).get_page(request.GET.get("page"))
    cards = [_card_context(rec) for rec in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    everything = Recommendation.objects.order_by()
    context = {
        "page": page, "cards": cards, "show": show, "filters": filters, "query": query.urlencode(),
        "vendors": sorted(set(everything.values_list("vendor", flat=True))),
        "warehouses": sorted(set(everything.values_list("warehouse", flat=True))),
        "urgencies": Urgency.choices, "shows": list(SHOWS), "nav": "replenishment",
        "to_review": everything.filter(status=S.PENDING).count(), "bulk_note": bulk_note,
    }
    return render_page(request, "integrations/replenishment/list.html", context, fragment="recommendation-list")


def _card(request, rec: Recommendation, *, error: str = "", notice: str = "", status: int = 200) -> HttpResponse:
    rec = _get_recommendation(rec.pk)
    response = render(request, "integrations/replenishment/_card.html",
                      _card_context(rec, error=error, notice=notice), status=status)
    response["HX-Trigger"] = "replenishmentChanged"
    return response


def _answer(request, rec: Recommendation, *, error: str = "", notice: str = ""):
    """The card for an HTMX swap (200 with the message in it, so HTMX shows it); otherwise back to the list
    with the message, a refusal answered 409."""
    if request.htmx:
        return _card(request, rec, error=error, notice=notice)
    if error:
        return HttpResponse(error, status=409, content_type="text/plain; charset=utf-8")
    messages.success(request, notice)
    return redirect("replenishment")


@require_POST
@role_required(OPS, message=ROLE_MESSAGE)
def recommendation_approve(request: HtmxHttpRequest, pk: int):
    rec = _get_recommendation(pk)
    try:
        flow.recommendation_approve(recommendation_id=rec.pk, user=request.user)
    except flow.RecommendationRefused as refused:
        return _answer(request, rec, error=str(refused))
    return _answer(request, rec, notice="Approved: the purchase order is raised in the ERP.")


@require_POST
@role_required(OPS, message=ROLE_MESSAGE)
def recommendation_reject(request: HtmxHttpRequest, pk: int):
    rec = _get_recommendation(pk)
    try:
        flow.recommendation_reject(recommendation_id=rec.pk, user=request.user, reason=request.POST.get("reason", ""))
    except flow.RecommendationRefused as refused:
        if not request.htmx:
            return HttpResponse(str(refused), status=400 if "why" in str(refused) else 409,
                                content_type="text/plain; charset=utf-8")
        return _card(request, rec, error=str(refused))
    return _answer(request, rec, notice="Rejected.")


@require_POST
@role_required(OPS, message=ROLE_MESSAGE)
def recommendations_bulk_approve(request: HtmxHttpRequest):
    ids = [i for i in request.POST.getlist("ids") if i.isdigit()][:MAX_BULK]
    approved, refused = 0, []
    for rec in Recommendation.objects.filter(pk__in=ids).order_by("pk"):
        try:
            flow.recommendation_approve(recommendation_id=rec.pk, user=request.user)
            approved += 1
        except flow.RecommendationRefused as exc:
            refused.append(f"{rec.planner_reference or rec.pk}: {exc}")
    if not ids:
        if not request.htmx:
            return HttpResponse("Choose at least one recommendation.", status=400, content_type="text/plain")
        refused.append("Choose at least one recommendation.")
    note = f"{approved} approved." + (" Not approved: " + " · ".join(refused) if refused else "")
    if not request.htmx:
        messages.info(request, note)
        return redirect("replenishment")
    response = _list_page(request, bulk_note=note)
    response["HX-Trigger"] = "replenishmentChanged"
    return response


@require_POST
@role_required(OPS, message=ROLE_MESSAGE)
def line_quantity(request: HtmxHttpRequest, pk: int):
    line = get_object_or_404(RecommendationLine.objects.select_related("recommendation__connection"), pk=pk)
    rec = line.recommendation
    try:
        quantity = flow.parse_quantity(request.POST.get("quantity"))
        flow.line_quantity_set(line_id=line.pk, quantity=quantity)
    except ValueError as bad:
        if not request.htmx:
            return HttpResponse(str(bad), status=400, content_type="text/plain; charset=utf-8")
        return _card(request, rec, error=f"{line.sku}: {bad}")
    except flow.RecommendationRefused as refused:
        return _answer(request, rec, error=str(refused))
    return _answer(request, rec, notice=f"{line.sku}: {quantity} to order.")


@require_GET
@role_required(OPS, message=ROLE_MESSAGE)
def replenishment_sku(request: HtmxHttpRequest, sku: str):
    """One SKU: the planner's figures per warehouse, the ERP's ATS per depot and what each storefront shows."""
    variants = list(PlannerVariant.objects.filter(sku=sku).select_related("connection"))
    lines = list(RecommendationLine.objects.filter(sku=sku).select_related("recommendation")
                 .order_by("-recommendation__created_at")[:20])
    codes = {line.erp_item_code for line in lines if line.erp_item_code} | {sku}
    levels = list(InventoryLevel.objects.filter(erp_item_code__in=codes).select_related("connection")
                  .order_by("erp_warehouse", "connection__code"))
    if not variants and not lines and not levels:
        return render(request, "integrations/replenishment/sku.html", {"sku": sku, "nav": "replenishment"},
                      status=404)
    context = {"sku": sku, "variants": variants, "lines": lines, "levels": levels, "nav": "replenishment"}
    return render_page(request, "integrations/replenishment/sku.html", context)
