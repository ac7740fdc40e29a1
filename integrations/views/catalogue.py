"""Item master screens (e-commerce and admins): the price comparison (ERP master prices beside each
storefront's, scope by scope, from the last prices check) with "Restore ERP price" and "Run now"; the
catalogue status (where each item is live, what it waits for, when it was pushed, what changed since);
the publish queue (release many at once, running pushes' progress). Pages read stored rows only: the
checks and the catalogue flow talk to the vendors, never a page view for a whole catalogue."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page, wants_fragment
from config.roles import ECOMMERCE, role_required
from exceptions_queue.models import ExceptionRecord

from ..drift import price_comparison as comparison
from ..drift.price_restore import RestoreRefused, item_code_for, price_restore
from ..models import Connection
from ..models.catalogue import CatalogItem, CatalogPublication, CatalogRun

ROLE_MESSAGE = "Only e-commerce or admin may use the catalogue screens."
PAGE_SIZE = 25
CHANGED = "catalogueChanged"


def _storefronts():
    return list(Connection.objects.storefronts().filter(active=True).order_by("code"))


def _chosen(connections: list[Connection], code: str) -> list[Connection]:
    return [c for c in connections if c.code == code] if code else connections


def _query(request, drop=("page",)) -> str:
    query = request.GET.copy()
    for name in drop:
        query.pop(name, None)
    return query.urlencode()


# --- price comparison ----------------------------------------------------------------------------

def _price_filters(request) -> dict:
    return {"connection": request.GET.get("connection", "").strip(), "q": request.GET.get("q", "").strip()[:100],
            "only": request.GET.get("only", "") in ("1", "on", "diff")}


def _differing_codes(connections: list[Connection], search: str) -> list[str]:
    """ERP item codes with an open price finding on one of these storefronts (the 'only differences' list)."""
    from integrations.models import DriftFinding

    rows = DriftFinding.objects.filter(check_code=comparison.CHECK, resolved_at__isnull=True,
                                       connection__in=connections).values_list("subject_id", "detail")
    codes = set()
    for sku, detail in rows.iterator(chunk_size=2000):
        code = ((detail or {}).get("erp") or {}).get("item") or sku
        if not search or search.lower() in code.lower() or search.lower() in sku.lower():
            codes.add(code)
    return sorted(codes)


def _price_context(request: HtmxHttpRequest, *, notice: str = "", error: str = "") -> dict:
    filters = _price_filters(request)
    storefronts = _storefronts()
    connections = _chosen(storefronts, filters["connection"])
    check = comparison.last_check()
    if filters["only"]:
        codes = _differing_codes(connections, filters["q"])
        source = comparison.erp_items(codes=codes)
    else:
        source = comparison.erp_items(search=filters["q"])
    page = Paginator(source, PAGE_SIZE).get_page(request.GET.get("page"))
    groups = comparison.compare(comparison.as_items(page.object_list), connections, check=check)
    if filters["only"]:
        groups = [g for g in groups if g.differs]
    return {
        "page": page, "groups": groups, "filters": filters, "storefronts": storefronts, "check": check,
        "rules": [comparison.rule(c) for c in connections], "query": _query(request), "notice": notice,
        "error": error, "nav": "catalogue", "differing": sum(1 for g in groups if g.differs),
    }


@require_GET
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def price_comparison(request: HtmxHttpRequest):
    return render_page(request, "catalogue/prices.html", _price_context(request), fragment="price-table")


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def _restore_target(request) -> tuple[Connection, str, ExceptionRecord | None]:
    """The storefront and SKU to restore: named by the form, or by the price exception it comes from."""
    exception = None
    if request.POST.get("exception"):
        exception = get_object_or_404(ExceptionRecord, pk=request.POST["exception"], type_code="drift_price_mismatch")
        code = (exception.context or {}).get("storefront", "")
        sku = exception.sku or (exception.context or {}).get("sku", "")
    else:
        code, sku = request.POST.get("connection", ""), request.POST.get("sku", "")
    connection = get_object_or_404(Connection, code=code)
    if not sku:
        raise Http404("no SKU named")
    return connection, sku, exception


@require_POST
@role_required(ECOMMERCE, message="Only e-commerce or admin may restore ERP prices.")
def price_restore_view(request: HtmxHttpRequest):
    """Set one storefront variant's prices back to the ERP's, then re-check that SKU. From the price
    comparison (an HTMX swap of that SKU's rows) or from the exception's page (a redirect back to it)."""
    connection, sku, exception = _restore_target(request)
    notice, error = "", ""
    try:
        notice = price_restore(connection=connection, sku=sku, user=request.user).message
    except RestoreRefused as refused:
        error = str(refused)
    if exception is not None or not wants_fragment(request):
        default = reverse("exception-detail", args=[exception.pk]) if exception else reverse("catalogue-prices")
        (messages.error if error else messages.success)(request, error or notice)
        return redirect(_safe_next(request, default))
    check = comparison.last_check()
    items = comparison.as_items(comparison.erp_items(codes=[item_code_for(connection, sku)]))
    groups = [g for g in comparison.compare(items, [connection], check=check) if g.sku == sku]
    response = render_page(request, "catalogue/_price_group.html",
                           {"group": groups[0] if groups else None, "notice": notice, "error": error,
                            "connection": connection, "sku": sku, "next": request.POST.get("next", "")})
    if not error:
        response["HX-Trigger"] = f"{CHANGED}, exceptionsChanged"
    return response


@require_POST
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def price_check_run(request: HtmxHttpRequest):
    """ "Run now": queue the prices check (it reads every storefront; the page shows it running)."""
    from ..drift.services import drift_check_queue

    drift_check_queue(code=comparison.CHECK, user=request.user)
    if not wants_fragment(request):
        messages.success(request, "The prices check is queued: this page shows its results when it finishes.")
        return redirect(_safe_next(request, reverse("catalogue-prices")))
    return render_page(request, "catalogue/_check_status.html", {"check": comparison.last_check(), "queued": True})


@require_GET
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def price_check_status(request: HtmxHttpRequest):
    """The last run's line, polled while a run goes; when it has finished the page's table refreshes."""
    check = comparison.last_check()
    response = render_page(request, "catalogue/_check_status.html", {"check": check})
    if not check["running"] and request.GET.get("was") == "running":
        response["HX-Trigger"] = "pricesChecked"
    return response


# --- catalogue status and publish queue -----------------------------------------------------------

STATES = tuple(CatalogPublication.State.values)
QUEUE_STATES = (CatalogPublication.State.READY, CatalogPublication.State.WAITING, CatalogPublication.State.FAILED)
MAX_RELEASE = 500


def _item_filters(request) -> dict:
    state = request.GET.get("state", "")
    return {"state": state if state in (*STATES, "changed") else "", "connection": request.GET.get("connection", "").strip(),
            "q": request.GET.get("q", "").strip()[:100]}


def _publications_matching(filters: dict, connections: list[Connection]):
    """The publications the state and storefront filters ask for (all of them when neither is set)."""
    pubs = CatalogPublication.objects.filter(connection__in=connections)
    if filters["state"] == "changed":
        pubs = (pubs.filter(state=CatalogPublication.State.LIVE).exclude(published_fingerprint="")
                .exclude(published_fingerprint=F("item__fingerprint")))
    elif filters["state"]:
        pubs = pubs.filter(state=filters["state"])
    return pubs


def _status_context(request: HtmxHttpRequest) -> dict:
    filters = _item_filters(request)
    storefronts = _storefronts()
    connections = _chosen(storefronts, filters["connection"])
    items = CatalogItem.objects.order_by("code", "pk")
    if filters["q"]:
        items = items.filter(Q(code__icontains=filters["q"]) | Q(name__icontains=filters["q"]))
    if filters["state"] or filters["connection"]:
        items = items.filter(Exists(_publications_matching(filters, connections).filter(item=OuterRef("pk"))))
    items = items.prefetch_related(Prefetch(
        "publications", queryset=CatalogPublication.objects.filter(connection__in=connections)
        .select_related("connection").order_by("connection__code")))
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    for item in page.object_list:
        pubs = {p.connection_id: p for p in item.publications.all()}
        item.where = [(c, pubs.get(c.pk)) for c in connections]
        for pub in pubs.values():
            pub.changed = pub.state == "live" and bool(pub.published_fingerprint) and pub.published_fingerprint != item.fingerprint
    return {"page": page, "filters": filters, "storefronts": storefronts, "states": STATES, "query": _query(request),
            "nav": "catalogue", "anything": CatalogItem.objects.exists(),
            "counts": dict(CatalogPublication.objects.filter(connection__in=connections).order_by()
                           .values_list("state").annotate(n=Count("pk")).values_list("state", "n"))}


@require_GET
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def catalogue_status(request: HtmxHttpRequest):
    return render_page(request, "catalogue/status.html", _status_context(request), fragment="item-table")


def _queue_filters(request) -> dict:
    state = request.GET.get("state", "") or request.POST.get("state", "")
    return {"state": state if state in QUEUE_STATES else "", "connection": request.GET.get("connection", "").strip(),
            "q": request.GET.get("q", "").strip()[:100]}


def _runs():
    return list(CatalogRun.objects.filter(state__in=CatalogRun.ACTIVE)
                .select_related("connection").order_by("-pk")[:20])


def _queue_context(request: HtmxHttpRequest, *, notice: str = "", error: str = "") -> dict:
    filters = _queue_filters(request)
    storefronts = _storefronts()
    connections = _chosen(storefronts, filters["connection"])
    pubs = (CatalogPublication.objects.filter(connection__in=connections,
                                                 state__in=(filters["state"],) if filters["state"] else QUEUE_STATES)
            .select_related("item", "connection").order_by("item__code", "connection__code", "pk"))
    if filters["q"]:
        pubs = pubs.filter(Q(item__code__icontains=filters["q"]) | Q(item__name__icontains=filters["q"]))
    page = Paginator(pubs, PAGE_SIZE).get_page(request.GET.get("page"))
    return {"page": page, "filters": filters, "storefronts": storefronts, "states": QUEUE_STATES, "runs": _runs(),
            "query": _query(request), "notice": notice, "error": error, "nav": "catalogue"}


@require_GET
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def publish_queue(request: HtmxHttpRequest):
    return render_page(request, "catalogue/queue.html", _queue_context(request), fragment="queue-table")


@require_POST
@role_required(ECOMMERCE, message="Only e-commerce or admin may release items to the storefronts.")
def publish_release(request: HtmxHttpRequest):
    """Release the chosen publications now (the catalogue flow publishes them; an item still missing
    something stays held with its exception)."""
    try:
        from ..flows.catalogue import release
    except ImportError:
        raise Http404("the catalogue flow is not installed") from None
    ids = [i for i in request.POST.getlist("ids") if i.isdigit()][:MAX_RELEASE]
    chosen = list(CatalogPublication.objects.filter(pk__in=ids, state__in=QUEUE_STATES)
                  .select_related("item", "connection"))
    if not chosen:
        notice, error = "", "Choose at least one item that is ready or waiting."
    else:
        outcome = release(chosen) or {}
        released, held = outcome.get("released", len(chosen)), outcome.get("held", 0)
        notice, error = f"{released} released: the storefronts are being updated (progress below).", ""
        if held:
            notice += (f" {held} still {'waits' if held == 1 else 'wait'} for data from the ERP and "
                       f"{'stays' if held == 1 else 'stay'} held (each exception says what is missing).")
        if len(chosen) < len(ids):
            gone = len(ids) - len(chosen)
            notice += f" {gone} {'was' if gone == 1 else 'were'} no longer in the queue."
    if not wants_fragment(request):
        (messages.error if error else messages.success)(request, error or notice)
        return redirect(_safe_next(request, reverse("catalogue-queue")))
    response = render_page(request, "catalogue/queue.html", _queue_context(request, notice=notice, error=error),
                           fragment="queue-table")
    if not error:
        response["HX-Trigger"] = CHANGED
    return response


@require_GET
@role_required(ECOMMERCE, message=ROLE_MESSAGE)
def publish_runs(request: HtmxHttpRequest):
    """The running pushes' progress (done / total), polled by the queue page while any runs."""
    return render_page(request, "catalogue/_runs.html", {"runs": _runs()})
