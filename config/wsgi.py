"""The WSGI application: the site through settings.MIDDLEWARE, webhooks through a shorter chain.

A webhook is most of the requests a storefront sends (two or more per order in a flash sale) and
needs none of what a page needs: no session, no signed-in user, no CSRF token (the views are exempt
and check the vendor's HMAC or token), no messages, no HTMX, no history user, no login throttling.
`WEBHOOK_MIDDLEWARE` (settings) keeps what it does need: the request id, the security headers and
the refusal of hostile input (config.bad_input). Every other path goes through the full chain.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
site = get_wsgi_application()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402


class WebhookHandler(WSGIHandler):
    """Django's WSGI handler with settings.WEBHOOK_MIDDLEWARE as its middleware."""

    def load_middleware(self, is_async=False):
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.WEBHOOK_MIDDLEWARE  # read once, here, at start-up
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


webhooks = WebhookHandler()
WEBHOOK_PREFIX = "/webhooks/"


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX):
        return webhooks(environ, start_response)
    return site(environ, start_response)


# Load every view module now, not on each server process's first request (which would otherwise
# answer a webhook seconds late right after a start or a restart).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
