"""Home (a dashboard of what needs attention), the unauthenticated health endpoint, the 500 page
and the sign-in lockout page."""
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models import Count
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from config.dashboard import dashboard
from config.htmx import HtmxHttpRequest, wants_fragment
from config.request_id import request_id_get

from exceptions_queue.models import ExceptionRecord
from integrations.models import InboundEvent, OrderLink

logger = logging.getLogger("ledgerline.health")
security_logger = logging.getLogger("ledgerline.security")
REFRESH_SECONDS = 10  # the dashboard section polls this often (its figures are cached ~30 s)
ATTENTION_STATES = (OrderLink.State.RECEIVED, OrderLink.State.WAITING_PAYMENT, OrderLink.State.POSTING,
                    OrderLink.State.FAILED)


def _overview() -> dict:
    """The overview cards: orders by state, open exceptions per team, the inbox's waiting and ignored events."""
    # Only the states a person may have to act on: each is a short index range, where counting the
    # posted and dispatched millions would scan the whole table on every visit.
    by_state = {row["state"]: row["n"] for row in OrderLink.objects.filter(state__in=ATTENTION_STATES)
                .values("state").annotate(n=Count("*")).order_by()}  # COUNT(*): answered from the state index
    open_by_team = {
        row["team"]: row["n"]
        for row in ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES)
        .values("team")
        .annotate(n=Count("id"))
    }
    ignored = [(row["topic"], row["n"]) for row in InboundEvent.objects.filter(status=InboundEvent.Status.IGNORED)
               .values("topic").annotate(n=Count("id")).order_by("-n", "topic")]
    return {
        "orders_by_state": [(label, by_state.get(value, 0), value) for value, label in OrderLink.State.choices
                            if value in ATTENTION_STATES],
        "open_by_team": open_by_team,
        "pending_events": InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).count(),
        "ignored_events": sum(n for _, n in ignored),
        "ignored_topics": ignored[:8],
    }


@require_GET
def home(request: HtmxHttpRequest):
    """The health dashboard: per flow its colour and the rule that set it, open exceptions by team and
    age, failing patterns, drift over time (config/dashboard.py, cached ~30 s); htmx refreshes the
    dashboard section every 10 s. The live flash-sale panel and the teams' own sections follow it."""
    context = {"board": dashboard(), "refresh_seconds": REFRESH_SECONDS}
    if not wants_fragment(request):  # the polled fragment needs the dashboard's figures only
        context.update(_overview())
    fragment = wants_fragment(request)
    response = render(request, "home.html#dashboard" if fragment else "home.html", context)
    patch_vary_headers(response, ("HX-Request",))
    if fragment:
        response["Cache-Control"] = "no-store"  # live figures: never replayed from a cache
    return response


def database_error() -> str | None:
    """Why the database does not answer, or None when it does."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # the health check reports, it does not crash
        return str(exc) or exc.__class__.__name__
    return None


def _sees_details(request) -> bool:
    try:
        return request.user.is_authenticated and request.user.is_staff
    except Exception:  # the session's user cannot be loaded (the database is down): a stranger
        return False


@login_not_required
@require_GET
def health(request):
    """Healthy or not, for anyone (a load balancer); what failed only for a signed-in staff user."""
    error = database_error()
    if error is not None:
        logger.warning("health check: the database does not answer: %s", error)
        body = {"status": "error", "database": error} if _sees_details(request) else {"status": "error"}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "database": "ok"} if _sees_details(request) else {"status": "ok"})


def server_error(request):
    """handler500: the styled 500 page with the request id to quote; plain text if that page fails.

    Rendered without the request's context processors (like Django's own): the page must show even
    when the database that the navigation counts from is what failed."""
    request_id = getattr(request, "request_id", None) or request_id_get()
    try:
        body = loader.get_template("500.html").render({"request_id": request_id})
        return HttpResponseServerError(body)
    except Exception:
        logger.exception("the 500 page itself failed to render")
        return HttpResponseServerError(
            f"Server error: something went wrong on our side. If you report it, quote this reference: {request_id}\n",
            content_type="text/plain; charset=utf-8")


def client_ip(request) -> str:
    """The client's address for login throttling: REMOTE_ADDR, or, behind TRUSTED_PROXY_COUNT proxies
    that append to X-Forwarded-For, the address the outermost of them saw."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count][:64]
    return request.META.get("REMOTE_ADDR", "")


def login_lockout(request, response=None, credentials=None):
    """django-axes' lockout answer: the lockout page (429), and the event on "ledgerline.security"."""
    username = str((credentials or {}).get("username") or request.POST.get("username", ""))[:150]
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    security_logger.warning(
        "sign-in locked out: username %r from %s after %s failed attempts; refused for %s minutes",
        username, client_ip(request), settings.AXES_FAILURE_LIMIT, minutes)
    return render(request, "registration/lockout.html",
                  {"username": username, "cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
                  status=429)
