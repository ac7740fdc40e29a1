"""Payout reconciliation URLs (included by integrations/urls.py)."""
from django.urls import path

from .views import payouts as views

urlpatterns = [
    path("payouts/", views.payout_list, name="payouts"),
    path("payouts/awaiting/", views.payouts_awaiting, name="payouts-awaiting"),
    path("payouts/month-end/", views.payouts_month_end, name="payouts-month-end"),
    path("payouts/month-end.<str:fmt>", views.payouts_month_end_export, name="payouts-month-end-export"),
    path("payouts/settlement-files/", views.settlement_upload, name="payouts-settlement-upload"),
    path("payouts/<int:pk>/", views.payout_detail, name="payout-detail"),
    path("payouts/<int:pk>/approve/", views.payout_approve, name="payout-approve"),
    path("payouts/<int:pk>/reject/", views.payout_reject, name="payout-reject"),
    path("payouts/<int:pk>/send-back/", views.payout_send_back, name="payout-send-back"),
    path("payouts/<int:pk>/rematch/", views.payout_rematch, name="payout-rematch"),
]
