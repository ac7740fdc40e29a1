"""A request id per request, tying a log line to the page a user saw.

`RequestIdMiddleware` (first in MIDDLEWARE) takes a sane incoming `X-Request-ID` (a proxy's or a
load balancer's) or makes one, keeps it for the duration of the request, and sends it back on the
response's `X-Request-ID` header; the 500 page shows it ("quote this reference"). `RequestIdFilter`
(on the console handler in settings.LOGGING) puts it on every log record as `record.request_id`
("-" outside a request: tasks, commands).
"""
from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
NO_REQUEST = "-"
# Letters, digits and a few separators, at most 64 characters: a UUID or a proxy's id fits,
# anything that could forge a log line or bloat it does not (and is replaced by our own).
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_current: ContextVar[str] = ContextVar("ledgerline_request_id", default=NO_REQUEST)


def request_id_get() -> str:
    """The id of the request being handled in this thread (or task), "-" when there is none."""
    return _current.get()


def request_id_for(incoming: str | None) -> str:
    """The incoming id when it is sane, otherwise a new one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_for(request.headers.get(HEADER))
        request.request_id = request_id
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record passing through (a record that has one keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a 4xx/5xx response after the middleware has finished, with the request
            # attached to the record: its id is read from there.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or _current.get()
        return True
