"""Connections screen, backfill runs and the re-sync of an order (integrations/views/connections.py,
integrations/views/resync.py)."""
from django.urls import path

from .views import connections as views
from .views import resync

urlpatterns = [
    path("connections/", views.connection_list, name="connections"),
    path("connections/add/", views.connection_add, name="connection-add"),
    path("connections/shopify/connect/", views.shopify_connect, name="connection-shopify-connect"),
    path("connections/shopify/callback/", views.shopify_callback, name="connection-shopify-callback"),
    path("connections/shopify/client-credentials/", views.shopify_client_credentials,
         name="connection-shopify-client-credentials"),
    path("connections/<int:pk>/", views.connection_detail, name="connection-detail"),
    path("connections/<int:pk>/edit/", views.connection_edit, name="connection-edit"),
    path("connections/<int:pk>/active/", views.connection_active, name="connection-active"),
    path("connections/<int:pk>/test/", views.connection_test_view, name="connection-test"),
    path("connections/<int:pk>/check/", views.connection_check, name="connection-check"),
    path("connections/<int:pk>/repair/", views.connection_repair, name="connection-repair"),
    path("connections/<int:pk>/backfill/", views.connection_backfill, name="connection-backfill"),
    path("connections/<int:pk>/import-order/", views.connection_import_order, name="connection-import-order"),
    path("connections/backfills/<int:pk>/", views.backfill_run, name="connection-backfill-run"),
    path("orders/<int:pk>/resync/", resync.order_resync_view, name="order-resync"),
]
