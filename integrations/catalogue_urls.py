"""Item master screens' URLs (included by integrations/urls.py)."""
from django.urls import path

from .views import catalogue as views

urlpatterns = [
    path("catalogue/", views.catalogue_status, name="catalogue"),
    path("catalogue/queue/", views.publish_queue, name="catalogue-queue"),
    path("catalogue/queue/release/", views.publish_release, name="catalogue-release"),
    path("catalogue/queue/runs/", views.publish_runs, name="catalogue-runs"),
    path("catalogue/prices/", views.price_comparison, name="catalogue-prices"),
    path("catalogue/prices/restore/", views.price_restore_view, name="catalogue-price-restore"),
    path("catalogue/prices/check/", views.price_check_run, name="catalogue-price-check-run"),
    path("catalogue/prices/check/status/", views.price_check_status, name="catalogue-price-check-status"),
]
