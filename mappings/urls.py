from django.urls import path

from . import proposal_views, views

urlpatterns = [
    path("", views.mapping_index, name="mappings"),
    path("health/", views.mapping_health_panel, name="mapping-health"),
    path("proposals/", proposal_views.mapping_proposals, name="mapping-proposals"),
    path("proposals/new/", proposal_views.mapping_propose, name="mapping-propose"),
    path("proposals/<int:pk>/approve/", proposal_views.mapping_proposal_approve, name="mapping-proposal-approve"),
    path("proposals/<int:pk>/reject/", proposal_views.mapping_proposal_reject, name="mapping-proposal-reject"),
    path("<slug:table>/", views.mapping_list, name="mapping-list"),
    path("<slug:table>/add/", views.mapping_add, name="mapping-add"),
    path("<slug:table>/import/", views.mapping_import, name="mapping-import"),
    path("<slug:table>/export.csv", views.mapping_export, name="mapping-export"),
    path("<slug:table>/<int:pk>/", views.mapping_detail, name="mapping-detail"),
    path("<slug:table>/<int:pk>/row/", views.mapping_row, name="mapping-row"),
    path("<slug:table>/<int:pk>/edit/", views.mapping_edit, name="mapping-edit"),
    path("<slug:table>/<int:pk>/delete/", views.mapping_delete, name="mapping-delete"),
    path("<slug:table>/<int:pk>/retry/", views.mapping_retry_exceptions, name="mapping-retry"),
    path("<slug:table>/<int:pk>/affected/", views.mapping_affected, name="mapping-affected"),
    path("<slug:table>/<int:pk>/revert/<int:history_id>/", views.mapping_revert, name="mapping-revert"),
]
