from django.urls import path

from . import views

urlpatterns = [
    path("", views.exception_list, name="exceptions"),
    path("badge/", views.nav_badge, name="exceptions-badge"),
    path("<int:pk>/", views.exception_detail, name="exception-detail"),
    path("<int:pk>/retry/", views.exception_retry_view, name="exception-retry"),
]
