from django.urls import path

from . import views, webhooks

urlpatterns = [
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order-detail"),
    path("orders/<int:pk>/retry/", views.order_retry, name="order-retry"),
    path("webhooks/shopify/<slug:connection_code>/", webhooks.shopify_webhook, name="webhook-shopify"),
    path(
        "webhooks/commercetools/<slug:connection_code>/",
        webhooks.commercetools_subscription,
        name="webhook-commercetools",
    ),
]
