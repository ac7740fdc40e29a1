"""Replenishment review URLs (included by integrations/urls.py)."""
from django.urls import path

from .views import replenishment as views

urlpatterns = [
    path("replenishment/", views.replenishment_list, name="replenishment"),
    path("replenishment/approve/", views.recommendations_bulk_approve, name="replenishment-bulk-approve"),
    path("replenishment/<int:pk>/approve/", views.recommendation_approve, name="replenishment-approve"),
    path("replenishment/<int:pk>/reject/", views.recommendation_reject, name="replenishment-reject"),
    path("replenishment/lines/<int:pk>/quantity/", views.line_quantity, name="replenishment-line-quantity"),
    path("replenishment/skus/<path:sku>/", views.replenishment_sku, name="replenishment-sku"),
]
