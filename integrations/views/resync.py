"""Re-sync on an order's page: the order read again from its storefront and re-applied through the
inbox (ops, e-commerce and admins)."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from config.htmx import HtmxHttpRequest
from config.roles import ECOMMERCE, OPS, role_required

from ..flows.backfill import ResyncRefused, order_resync
from ..models import OrderLink


@require_POST
@role_required(OPS, ECOMMERCE, message="Only ops, e-commerce or admin may re-sync an order.")
def order_resync_view(request: HtmxHttpRequest, pk: int):
    order = get_object_or_404(OrderLink.objects.select_related("connection"), pk=pk)
    try:
        result = order_resync(link=order, actor=request.user)
    except ResyncRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Order {order} read again from {order.connection.name}"
                                  + ("" if result.created else ": nothing new") + ".")
    response = redirect("order-detail", pk=order.pk)
    return response
