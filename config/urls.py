from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import ops_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    # Browsers ask for /favicon.ico on pages that name none (the layout names the SVG).
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    path("operating-model/", ops_views.operating_model_page, name="ops-operating-model"),
    path("audit/", ops_views.audit_page, name="ops-audit"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("integrations.urls")),
    path("exceptions/", include("exceptions_queue.urls")),
    path("mappings/", include("mappings.urls")),
    # The schema answers API clients itself (session or token; 401/403 without either, see
    # SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]); the docs page is a page: a visitor signs in first.
    path("api/schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
]

handler500 = "config.views.server_error"
