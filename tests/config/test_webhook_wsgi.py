"""The WSGI application the servers run (config.wsgi): webhooks through the short middleware chain,
pages through the full one, each still answering as before."""
import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.core import signals
from django.db import close_old_connections

from integrations.models import InboundEvent
from tests.payloads import shopify_headers, shopify_order

pytestmark = pytest.mark.django_db


def call(path: str, *, method: str = "GET", body: bytes = b"", headers: dict | None = None):
    """(status code, headers, body) of one request through config.wsgi.application, as the WSGI server
    would call it (the test's transaction kept open, as Django's test client keeps it)."""
    from config.wsgi import application

    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "testserver", "HTTP_HOST": "testserver"}
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    setup_testing_defaults(environ)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"], started["headers"] = int(status.split()[0]), dict(response_headers)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        content = b"".join(result)
        getattr(result, "close", lambda: None)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started["status"], started["headers"], content


def signed(payload: dict, **kw) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", **shopify_headers(body, **kw)}


@pytest.fixture
def sessions_opened(monkeypatch):
    """How many requests the session middleware (first of the pages' own) has seen."""
    from django.contrib.sessions.middleware import SessionMiddleware

    seen = []
    original = SessionMiddleware.process_request
    monkeypatch.setattr(SessionMiddleware, "process_request", lambda self, request: (seen.append(request.path),
                                                                                        original(self, request))[1])
    return seen


def test_a_signed_webhook_through_the_server_application_is_stored_without_the_pages_middleware(
        shopify_connection, sessions_opened):
    body, headers = signed(shopify_order(), webhook_id="wsgi-1")
    status, response_headers, content = call("/webhooks/shopify/shopify/", method="POST", body=body, headers=headers)
    assert sessions_opened == []  # the short chain: no session, user, CSRF, messages, HTMX, history, axes
    assert status == 200, content
    assert json.loads(content)["status"] == "accepted"
    assert InboundEvent.objects.filter(external_id="wsgi-1").exists()
    assert response_headers.get("X-Request-ID")  # the request id and the security headers are kept
    assert response_headers.get("X-Content-Type-Options") == "nosniff"
    assert "Set-Cookie" not in response_headers


def test_a_wrong_signature_through_the_server_application_is_still_refused(shopify_connection):
    body, headers = signed(shopify_order(), signature="bm90LXRoZS1obWFj")
    status, _, content = call("/webhooks/shopify/shopify/", method="POST", body=body, headers=headers)
    assert status == 401
    assert "HMAC" in json.loads(content)["error"]


def test_hostile_input_on_the_webhook_path_is_still_a_400_with_a_message(shopify_connection):
    body, headers = signed(shopify_order())
    status, _, content = call("/webhooks/shopify/shopify/", method="POST", body=body,
                              headers={**headers, "X-Shopify-Topic": "orders/paid\x00"})
    assert status == 400
    assert json.loads(content)["error"] == "invalid X-Shopify-Topic header"


def test_an_unknown_webhook_path_is_a_404_not_a_500(shopify_connection):
    status, _, _ = call("/webhooks/nowhere/", method="POST", body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 404


def test_a_page_through_the_server_application_still_asks_to_sign_in(sessions_opened):
    status, headers, _ = call("/")
    assert sessions_opened == ["/"]
    assert status == 302
    assert headers["Location"].startswith("/accounts/login/")
