"""Pages for the people who run the integration: the operating model (generated; printable and as
Markdown), the integration audit (admins; HTML and Markdown) and the Prometheus /metrics endpoint
(a configured token over HTTP basic auth, or a staff sign-in)."""
from __future__ import annotations

import base64
import binascii
import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.htmx import HtmxHttpRequest
from config.roles import ADMIN, role_required

from .audit import audit_markdown, integration_audit
from .metrics import metrics_registry
from .operating_model import operating_model, operating_model_markdown


def _base(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _markdown(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@require_GET
def operating_model_page(request: HtmxHttpRequest):
    model = operating_model()
    if request.GET.get("format") == "md":
        return _markdown(operating_model_markdown(model, base=_base(request)), "operating-model.md")
    return render(request, "ops/operating_model.html", {"model": model, "nav": "operating-model"})


@require_GET
@role_required(ADMIN, message="Only admins may read the integration audit.")
def audit_page(request: HtmxHttpRequest):
    audit = integration_audit()
    fmt = request.GET.get("format")
    if fmt == "md":
        return _markdown(audit_markdown(audit, base=_base(request)), "integration-audit.md")
    if fmt == "html":
        response = HttpResponse(render_to_string("ops/audit_report.html", {"audit": audit, "base": _base(request)}))
        response["Content-Disposition"] = 'attachment; filename="integration-audit.html"'
        return response
    return render(request, "ops/audit.html", {"audit": audit, "nav": "audit"})


def _token_ok(request) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        given = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


@login_not_required
@require_GET
def metrics(request):
    """Prometheus text exposition, computed from the database on each scrape."""
    user = getattr(request, "user", None)
    if not (_token_ok(request) or (user is not None and user.is_authenticated and user.is_staff)):
        response = HttpResponse("Metrics need the metrics token (HTTP basic auth, any user name) or a staff "
                                "sign-in.\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Basic realm="Ledgerline metrics", charset="UTF-8"'
        return response
    response = HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
