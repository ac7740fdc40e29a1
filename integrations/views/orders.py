"""Order list and order detail: where each storefront order is on its way to the ERP."""
import re

import django_filters
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import ADMIN, ECOMMERCE, OPS, has_role, role_required

from ..models import OrderLink, Connection


class OrderFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    state = django_filters.ChoiceFilter(choices=OrderLink.State.choices, empty_label="Any state")
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.storefronts(), empty_label="Any storefront"
    )

    class Meta:
        model = OrderLink
        fields = ["q", "state", "connection"]

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
        "timeline": order.timeline.select_related("event"),
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
