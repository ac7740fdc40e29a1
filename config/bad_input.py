"""Hostile or malformed input answered with a clear 4xx before any view runs (see issue 13).

- A NUL character (PostgreSQL refuses it in text, so it would end as a 500) in the path, a query
  parameter, a header or a form field: 400 with a message saying where.
- A path segment of digits beyond a 64-bit id (e.g. /orders/<30 digits>/): 404, as for any id that
  does not exist, before a database is asked.
- A sign-in with a username longer than any user's: 400. Django's login form does not enforce the
  length, and django-axes stores each failed username in a 255-character column (PostgreSQL: 500).

Each refusal is logged at WARNING on "ledgerline.security" with the place (a parameter's or header's
name), never the value. JSON bodies are read by config.safe_json, which refuses `\\u0000` itself.
`db_int` is the check for integers typed into forms (e.g. ids of a bulk action).
"""
from __future__ import annotations

import logging
import re

from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpResponse, JsonResponse

log = logging.getLogger("ledgerline.security")

# The largest id a BigAutoField (signed 64-bit) holds, on every database.
MAX_DB_INT = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
# Where a client expects JSON back rather than a page.
JSON_PREFIXES = ("/webhooks/", "/exceptions/api/", "/api/")


def db_int(value) -> int | None:
    """The integer a form value names if it is a plain decimal that fits a 64-bit column, else None."""
    text = str(value).strip()
    if not _DIGITS.fullmatch(text) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_DB_INT else None


def _wants_json(request) -> bool:
    return request.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("Accept", "")


def _log(request, status: int, error: str) -> None:
    log.warning("bad input refused status=%s method=%s path=%r error=%s addr=%s", status, request.method,
                request.path[:200], error, request.META.get("REMOTE_ADDR"))


def _refuse(request, status: int, error: str, message: str):
    _log(request, status, error)
    if _wants_json(request):
        return JsonResponse({"error": error, "message": message}, status=status)
    return HttpResponse(f"{error}: {message}\n", status=status, content_type="text/plain; charset=utf-8")


def _nul_in(querydict) -> str | None:
    """The name of the first field whose name or a value holds a NUL character, or None."""
    for name, values in querydict.lists():
        if "\x00" in name or any("\x00" in str(v) for v in values):
            return name.replace("\x00", "\\0")[:60]
    return None


def _oversized_id_in_path(path: str) -> bool:
    return any(_DIGITS.fullmatch(part) and db_int(part) is None for part in path.split("/"))


class BadInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info or "\x00" in request.path:
            return _refuse(request, 400, "invalid path", "the address contains a NUL character (%00)")
        if _oversized_id_in_path(request.path_info):
            if not _wants_json(request):  # the site's own 404 page
                _log(request, 404, "id beyond 64 bits in the path")
                raise Http404("No record has an id that large.")
            return _refuse(request, 404, "not found", "no record has an id that large")
        for key, value in request.META.items():
            if (key.startswith("HTTP_") or key == "CONTENT_TYPE") and isinstance(value, str) and "\x00" in value:
                header = key.removeprefix("HTTP_").replace("_", "-").title()
                return _refuse(request, 400, f"invalid {header} header", "header values may not contain a NUL character")
        if name := _nul_in(request.GET):
            return _refuse(request, 400, f"invalid query parameter {name!r}",
                           "query parameters may not contain a NUL character (%00)")
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        """Form fields, once the view is known: a CSRF-exempt view (a webhook, the API) that is sent a
        multipart body reads its own body, so that body is not parsed here."""
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        content_type = request.content_type or ""
        if content_type == "multipart/form-data" and getattr(view_func, "csrf_exempt", False):
            return None
        if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return None
        try:
            fields = request.POST
        except OSError:  # the client went away mid-upload: the view sees the same
            return None
        if name := _nul_in(fields):  # (Django drops unprintable characters from file names itself)
            return _refuse(request, 400, f"invalid form field {name!r}", "form fields may not contain a NUL character")
        if issubclass(getattr(view_func, "view_class", object), LoginView):
            user_model = get_user_model()
            limit = user_model._meta.get_field(user_model.USERNAME_FIELD).max_length
            if len(fields.get("username", "")) > limit:
                return _refuse(request, 400, "username too long", f"a username has at most {limit} characters")
        return None
