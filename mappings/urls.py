from django.urls import path

from . import views

urlpatterns = [
    path("", views.mapping_index, name="mappings"),
    path("health/", views.mapping_health_panel, name="mapping-health"),
    path("<slug:table>/", views.mapping_list, name="mapping-list"),
    path("<slug:table>/add/", views.mapping_add, name="mapping-add"),
    path("<slug:table>/import/", views.mapping_import, name="mapping-import"),
    path("<slug:table>/export.csv", views.mapping_export, name="mapping-export"),
    path("<slug:table>/<int:pk>/", views.mapping_detail, name="mapping-detail"),
    path("<slug:table>/<int:pk>/row/", views.mapping_row, name="mapping-row"),
    path("<slug:table>/<int:pk>/edit/", views.mapping_edit, name="mapping-edit"),
    path("<slug:table>/<int:pk>/delete/", views.mapping_delete, name="mapping-delete"),
    path("<slug:table>/<int:pk>/retry/", views.mapping_retry_exceptions, name="mapping-retry"),
    path("<slug:table>/<int:pk>/revert/<int:history_id>/", views.mapping_revert, name="mapping-revert"),
]
