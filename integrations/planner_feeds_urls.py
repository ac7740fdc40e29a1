from django.urls import path

from .views import planner_feeds as views

urlpatterns = [
    path("planner-feeds/", views.planner_feeds, name="planner-feeds"),
    path("planner-feeds/<slug:connection_code>/", views.planner_feed_status, name="planner-feed-status"),
    path("planner-feeds/<slug:connection_code>/password/", views.planner_feed_password, name="planner-feed-password"),
    # The CSV connector's permanent file URLs (basic auth, no session).
    path("planner-feeds/<slug:connection_code>/<str:warehouse>/<str:filename>", views.planner_feed_file,
         name="planner-feed-file"),
]
