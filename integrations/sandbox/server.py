"""A tiny HTTP framework for the vendor sandboxes: one threaded server on loopback, each vendor
mounted under its own path prefix (/shopify, /commercetools, /erp, /prima), state in memory.

Tests start it in a thread (`start_sandbox()`) and reach each vendor's state directly to assert on
it; the demo runs it as `manage.py sandbox`. Connectors only ever see its base URLs.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # below the vendor's prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self):
        return json.loads(self.body.decode("utf-8") or "null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> "Response":
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request], Response]


class RateLimiter:
    """A fixed one-second window per key: `limit` requests, then 429 with Retry-After until it rolls."""

    def __init__(self, limit_per_second: float):
        self.limit = limit_per_second
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}
        self.rejected = 0

    def check(self, key: str = "") -> float | None:
        """None when allowed, else the seconds to wait."""
        if not self.limit:
            return None
        now = time.time()
        window = int(now)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            if count >= self.limit:
                self.rejected += 1
                return (window + 1) - now
            self._windows[key] = (start, count + 1)
            return None


# Stock states an ERP keeps besides on hand / allocated / reserved (both ERP sandboxes).
STOCK_STATES = ("in_transit", "quality_inspection", "damaged", "returned_awaiting_inspection")


class DepotStock:
    """Depots and stock figures, kept alike by the REST ERP and Prima sandboxes (each answers them in
    its own protocol). Needs `self.lock`, `self.depots` and `self.stock`."""

    def add_depot(self, code: str, name: str = "") -> dict:
        with self.lock:
            self.depots[code] = {"code": code, "name": name or code}
            return dict(self.depots[code])

    def set_stock(self, item_code: str, depot: str, on_hand: int = 0, allocated: int = 0, reserved: int = 0,
                  **states: int) -> dict:
        unknown = set(states) - set(STOCK_STATES)
        if unknown:
            raise ValueError(f"unknown stock states {sorted(unknown)}; known: {sorted(STOCK_STATES)}")
        with self.lock:
            row = {"item_code": item_code, "depot": depot, "on_hand": int(on_hand), "allocated": int(allocated),
                   "reserved": int(reserved), "states": {s: int(states.get(s, 0)) for s in STOCK_STATES}}
            self.stock[(item_code, depot)] = row
            return copy.deepcopy(row)

    # Returned goods are counted on hand but held in this state until they are inspected.
    AWAITING_INSPECTION = "returned_awaiting_inspection"

    def _returned(self, row: dict, units: int) -> None:
        """Returned units arrive: on hand, but not sellable until inspected. Call under the lock."""
        row["on_hand"] += units
        row["states"][self.AWAITING_INSPECTION] += units

    def _inspected(self, row: dict, units: int, *, passed: bool) -> None:
        """An inspection of returned units: passed, they become sellable stock; failed, damaged."""
        units = min(units, row["states"][self.AWAITING_INSPECTION])
        row["states"][self.AWAITING_INSPECTION] -= units
        if not passed:
            row["states"]["damaged"] += units


class FaultInjection:
    """What an ERP sandbox can be told to do wrong: rate limit, record locks, latency, outage."""

    def configure(self, *, rate_limit: float | None = None, lock_probability: float | None = None,
                  latency: float | None = None, outage: bool | None = None) -> dict:
        with self.lock:
            if rate_limit is not None:
                self.rate_limiter = RateLimiter(float(rate_limit))
            if lock_probability is not None:
                self.lock_probability = float(lock_probability)
            if latency is not None:
                self.latency = float(latency)
            if outage is not None:
                self.outage = bool(outage)
            return self._config()

    def _config(self) -> dict:
        return {"rate_limit": self.rate_limiter.limit, "lock_probability": self.lock_probability,
                "latency": self.latency, "outage": self.outage}


class VendorApp:
    """Base class of one vendor's sandbox: routes plus in-memory state guarded by a lock."""

    prefix = ""

    def __init__(self):
        self.lock = threading.RLock()
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests_seen: list[tuple[str, str]] = []
        self.register_routes()

    def register_routes(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def reset(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def serving(self) -> None:
        """Called once the app is mounted on a server: a place to warm what its first request needs."""

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.requests_seen.append((request.method, request.path))
        allowed = []
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match:
                if method != request.method:
                    allowed.append(method)
                    continue
                request.params = match.groupdict()
                return handler(request)
        if allowed:
            return Response.json({"error": "method not allowed"}, 405, {"Allow": ", ".join(allowed)})
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: a small answer leaves at once
    server: "SandboxServer"

    def log_message(self, fmt, *args):  # quiet: the demo prints its own summary
        pass

    def _handle(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = None
        for prefix, app in self.server.apps.items():
            if parts.path == prefix or parts.path.startswith(prefix + "/"):
                request = Request(self.command, parts.path[len(prefix):] or "/", parse_qs(parts.query), headers, body)
                try:
                    response = app.dispatch(request)
                except Exception as exc:  # a sandbox bug answers 500 like a real server would
                    response = Response.json({"error": f"sandbox error: {exc!r}"}, 500)
                break
        if response is None:
            response = Response.json({"error": "unknown sandbox system", "systems": list(self.server.apps)}, 404)
        self._answer(response)

    def _answer(self, response: Response) -> None:
        """Status line, headers and body in ONE write: sent in two, the body waits for the ACK of the
        headers (Nagle) that the client delays (~40 ms), which capped a keep-alive connection near 22/s."""
        phrase = self.responses.get(response.status, ("",))[0]
        lines = [f"{self.protocol_version} {response.status} {phrase}",
                 f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
            if name.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
        lines.append(f"Content-Length: {len(response.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, apps: dict[str, VendorApp]):
        super().__init__(address, _Handler)
        self.apps = apps
        for app in apps.values():
            app.serving()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def build_apps(**options) -> dict[str, VendorApp]:
    """Every vendor sandbox, keyed by its path prefix. Options are passed to the vendors that take them."""
    from .registry import build_vendor_apps

    return build_vendor_apps(**options)


def start_sandbox(host: str = "127.0.0.1", port: int = 0, **options) -> SandboxServer:
    server = SandboxServer((host, port), build_apps(**options))
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    return server
