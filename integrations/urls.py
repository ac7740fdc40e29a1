from django.urls import include, path

from .inbox import erp_webhooks, webhooks
from .views import inventory as inventory_views
from .views import orders as views
from .views import progress as progress_views

urlpatterns = [
    # The webhooks first: they are most of the requests, and each pattern before them is tried in vain.
    path("webhooks/shopify/<slug:connection_code>/", webhooks.shopify_webhook, name="webhook-shopify"),
    path("progress/", progress_views.home_progress, name="home-progress"),
    path("", include("integrations.connections_urls")),
    path("", include("integrations.replenishment_urls")),
    path("", include("integrations.planner_feeds_urls")),
    path("", include("integrations.payouts_urls")),
    path("", include("integrations.catalogue_urls")),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/retry/", views.order_retry, name="order-retry"),
    path("inventory/", inventory_views.inventory_health, name="inventory"),
    path("inventory/levels/<int:pk>/", inventory_views.inventory_level, name="inventory-level"),
    path("inventory/sync/", inventory_views.inventory_sync, name="inventory-sync"),
    path("inventory/runs/<int:pk>/progress/", inventory_views.inventory_run_progress, name="inventory-run-progress"),
    path("webhooks/erp/<slug:connection_code>/", erp_webhooks.erp_dispatch_webhook, name="webhook-erp"),
    path(
        "webhooks/commercetools/<slug:connection_code>/",
        webhooks.commercetools_subscription,
        name="webhook-commercetools",
    ),
]
