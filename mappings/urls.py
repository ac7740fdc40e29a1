from django.urls import path

from . import views

urlpatterns = [
    path("", views.mapping_index, name="mappings"),
]
