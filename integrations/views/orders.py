"""Order list and order detail: where each storefront order is on its way to the ERP."""
import re

import django_filters
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import ADMIN, ECOMMERCE, OPS, has_role, role_required

from ..models import Dispatch, OrderEvent, OrderLink, Connection

# What happened after posting, as the list filters it (the ERP's dispatches, refunds of any size).
AFTER_POSTING = [
    ("dispatched", "Dispatched"),
    ("partly_dispatched", "Partly dispatched"),
    ("refunded", "Refunded"),
    ("storefront_not_told", "Dispatched, storefront not told yet"),
]
REFUND_KINDS = (OrderEvent.Kind.REFUNDED, OrderEvent.Kind.REFUND_RECEIVED, OrderEvent.Kind.CREDIT_MEMO_POSTED)


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    state = django_filters.ChoiceFilter(choices=OrderLink.State.choices, empty_label="Any state")
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.storefronts(), empty_label="Any storefront"
    )
    after_posting = django_filters.ChoiceFilter(choices=AFTER_POSTING, method="filter_after_posting",
                                                empty_label="Anything", label="After posting")

    class Meta:
        model = OrderLink
        fields = ["q", "state", "connection", "after_posting"]

    def filter_after_posting(self, queryset, name, value):
        if value == "dispatched":
            return queryset.filter(state=OrderLink.State.DISPATCHED)
        if value == "partly_dispatched":
            return queryset.filter(state=OrderLink.State.PARTLY_DISPATCHED)
        if value == "refunded":
            return queryset.filter(Q(state=OrderLink.State.REFUNDED) | Q(timeline__kind__in=REFUND_KINDS)).distinct()
        if value == "storefront_not_told":
            return queryset.filter(dispatches__storefront_status__in=[
                Dispatch.Status.PENDING, Dispatch.Status.SENDING, Dispatch.Status.RETRYING,
                Dispatch.Status.FAILED]).distinct()
        return queryset

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(order_number__icontains=value)
            | Q(storefront_order_id__icontains=value)
            | Q(erp_order_id__icontains=value)
            | Q(customer_email__icontains=value)
        )


def payment_label(state: str) -> str:
    """A storefront payment state for people: "partially_refunded" or "BalanceDue" -> "Partially refunded",
    "Balance due"; blank -> "Unknown"."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", state or "").replace("_", " ").split()
    return " ".join(words).capitalize() if words else "Unknown"


def _labelled(order: OrderLink) -> OrderLink:
    order.payment_label = payment_label(order.payment_state)
    return order


@require_GET
def order_list(request: HtmxHttpRequest):
    filterset = OrderFilter(request.GET, queryset=OrderLink.objects.select_related("connection"))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    page.object_list = [_labelled(o) for o in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {"filter": filterset, "page": page, "query": query.urlencode(), "nav": "orders"}
    return render_page(request, "integrations/order_list.html", context, fragment="order-table")


@require_GET
def order_detail(request: HtmxHttpRequest, pk: int):
    order = _labelled(get_object_or_404(OrderLink.objects.select_related("connection"), pk=pk))
    context = {
        "order": order,
        # One timeline, in order: every entry as it is; an entry a dispatch belongs to shows its details.
        "timeline": order.timeline.select_related("event", "dispatch"),
        "events": order.connection.events.filter(resource_id=order.storefront_order_id).order_by("received_at")[:50],
        "exceptions": order.exceptions.all(),
        "can_retry": has_role(request.user, OPS, ECOMMERCE, ADMIN),
        "nav": "orders",
    }
    return render(request, "integrations/order_detail.html", context)


@require_POST
@role_required(OPS, ECOMMERCE, message="Only ops, e-commerce or admin may retry an order.")
def order_retry(request: HtmxHttpRequest, pk: int):
    order = get_object_or_404(OrderLink.objects.select_related("connection"), pk=pk)
    from ..flows.orders.sweep import order_retry_queue

    # Queued, answered at once: the ERP is called by a worker, never inside a web request.
    queued = order_retry_queue(order=order, actor=request.user)
    _labelled(order)
    context = {"order": order, "can_retry": True, "retry_queued": queued}
    response = render(request, "integrations/order_detail.html#order-state", context)
    response["HX-Trigger"] = "exceptionsChanged"
    return response
