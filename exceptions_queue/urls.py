from django.urls import include, path

from . import api, views

urlpatterns = [
    path("", views.exception_list, name="exceptions"),
    path("badge/", views.nav_badge, name="exceptions-badge"),
    path("group/", views.exception_group, name="exception-group"),
    path("bulk/", views.exceptions_bulk, name="exceptions-bulk"),
    path("jobs/<int:pk>/", views.bulk_job, name="exceptions-job"),
    path("<int:pk>/", views.exception_detail, name="exception-detail"),
    path("api/", include(api.urlpatterns)),
]
urlpatterns += [
    path(f"<int:pk>/{action}/", views.exception_act, {"action": action}, name=f"exception-{action}")
    for action in ("assign", "comment", "retry", "resolve", "ignore", "reopen")
]
