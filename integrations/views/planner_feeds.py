"""Inventory Planner feeds: the CSV connector's snapshot files at permanent URLs (HTTP basic auth with
the connection's feed password, no session), and the feed status screen (ops and admins)."""
from __future__ import annotations

import base64
import binascii
import hmac

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import HtmxHttpRequest, render_page
from config.roles import ADMIN, OPS, has_role, role_required

from ..flows.planner_feeds import feed_password_set, snapshot_stream
from ..flows.planner_feeds.settings import feed_username, planner_warehouses, sftp_target
from ..models import Connection
from ..models.planner_feeds import FeedRun

FILES = {"products.csv": "products", "sales_orders.csv": "sales_orders", "purchase_orders.csv": "purchase_orders"}
REALM = 'Basic realm="Ledgerline planner feeds", charset="UTF-8"'


def _unauthorized() -> HttpResponse:
    response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = REALM
    return response


def _basic_credentials(request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def _feed_connection_for_basic_auth(request, code: str) -> Connection | None:
    """The planner connection whose feed password the request carries, else None (one answer, 401,
    for an unknown connection, one without a password and a wrong password alike)."""
    given = _basic_credentials(request)
    connection = Connection.objects.filter(code=code, kind="inventory_planner", active=True).first()
    expected = connection.secret("feed_password") if connection is not None else ""
    if given is None or connection is None or not expected:
        return None
    user_ok = hmac.compare_digest(given[0].encode(), feed_username(connection).encode())
    password_ok = hmac.compare_digest(given[1].encode(), expected.encode())
    return connection if user_ok and password_ok else None


@login_not_required
@require_http_methods(["GET", "HEAD"])
def planner_feed_file(request, connection_code: str, warehouse: str, filename: str):
    connection = _feed_connection_for_basic_auth(request, connection_code)
    if connection is None:
        return _unauthorized()
    if warehouse not in planner_warehouses(connection):
        raise Http404("This connection plans no such warehouse.")
    kind = FILES.get(filename)
    if kind is None:
        raise Http404("No such feed file.")
    headers = {"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"}
    if request.method == "HEAD":  # the planner checks the file exists when the connection is set up
        return HttpResponse(content_type="text/csv; charset=utf-8", headers=headers)
    return StreamingHttpResponse(snapshot_stream(connection=connection, warehouse=warehouse, kind=kind),
                                 content_type="text/csv; charset=utf-8", headers=headers)


def _planner_connection(code: str) -> Connection:
    return get_object_or_404(Connection, code=code, kind="inventory_planner")


@require_GET
@role_required(OPS, message="Only ops or admin may see the planner feeds.")
def planner_feeds(request: HtmxHttpRequest):
    connections = list(Connection.objects.filter(kind="inventory_planner").order_by("code"))
    for connection in connections:
        connection.last_run = FeedRun.objects.filter(connection=connection).first()
    return render(request, "integrations/planner_feeds/list.html", {"connections": connections, "nav": "planner-feeds"})


def _status_context(request, connection: Connection) -> dict:
    warehouses = planner_warehouses(connection)
    return {
        "connection": connection,
        "runs": FeedRun.objects.filter(connection=connection)[:30],
        "last_snapshot": FeedRun.objects.filter(connection=connection, kind=FeedRun.Kind.SNAPSHOT).first(),
        "last_increment": FeedRun.objects.filter(connection=connection, kind=FeedRun.Kind.INCREMENTAL).first(),
        "urls": [(w, [request.build_absolute_uri(reverse("planner-feed-file", args=[connection.code, w, name]))
                      for name in FILES]) for w in warehouses],
        "feed_username": feed_username(connection),
        "has_password": bool(connection.secret("feed_password")),
        "sftp": sftp_target(connection),
        "can_set_password": has_role(request.user, ADMIN),
        "nav": "planner-feeds",
    }


@require_GET
@role_required(OPS, message="Only ops or admin may see the planner feeds.")
def planner_feed_status(request: HtmxHttpRequest, connection_code: str):
    connection = _planner_connection(connection_code)
    return render_page(request, "integrations/planner_feeds/status.html", _status_context(request, connection),
                       fragment="runs")


@require_POST
@role_required(message="Only an admin may replace a feed password.")
def planner_feed_password(request: HtmxHttpRequest, connection_code: str):
    connection = _planner_connection(connection_code)
    password = feed_password_set(connection=connection)
    context = {**_status_context(request, connection), "new_password": password, "has_password": True}
    response = render(request, "integrations/planner_feeds/status.html", context)
    response["Cache-Control"] = "no-store"  # the password is shown this once
    return response
