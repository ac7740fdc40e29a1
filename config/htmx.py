"""The one answer to "fragment or page?": an HTMX swap gets the named partial, anything else (a
plain visit, a history restore after Back, a boosted link) gets the whole page; the response varies
on HX-Request so no cache or browser history mixes the two, and a fragment is never stored at all
(Cache-Control: no-store), so Back can only ever bring a whole page back."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control, patch_vary_headers
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def wants_fragment(request: HtmxHttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and not htmx.boosted


def render_page(request: HtmxHttpRequest, template: str, context: dict, *, fragment: str | None = None,
                status: int = 200) -> HttpResponse:
    """Render `template`, or only its partial `fragment` when the request is an HTMX swap."""
    name = f"{template}#{fragment}" if fragment and wants_fragment(request) else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


class VaryOnHtmxMiddleware:
    """Every response may be a fragment or a page for the same URL: say so to caches and browsers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            patch_vary_headers(response, ("HX-Request",))
            if wants_fragment(request) and not response.has_header("Cache-Control"):
                patch_cache_control(response, no_store=True, private=True)
        return response
