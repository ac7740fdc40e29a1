"""A connector's HTTP client honours the environment's proxy settings (HTTP_PROXY, NO_PROXY) as
requests does, though it reads them once per host instead of on every request."""
import http.server
import threading

import pytest
import requests

from integrations.connectors.base import RetryingClient, TransientError


@pytest.fixture
def vendor():
    """A plain HTTP server on loopback that answers 200 "vendor" to any GET."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"vendor"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client():
    return RetryingClient(timeout=3, max_attempts=1, backoff_base=0)


def test_a_proxy_in_the_environment_is_used(vendor, monkeypatch):
    # Port 9 on loopback: nothing listens, so a request that goes through the "proxy" fails.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = _client()
    with pytest.raises(TransientError, match="cannot reach"):
        client.request("GET", f"{vendor}/orders")
    with pytest.raises(TransientError, match="cannot reach"):  # the second request too
        client.request("GET", f"{vendor}/orders")


def test_no_proxy_lets_the_host_be_reached_directly(vendor, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = _client()
    for _ in range(3):
        response = client.request("GET", f"{vendor}/orders")
        assert response.status_code == 200 and response.text == "vendor"


def test_the_environment_is_read_once_per_host_not_per_request(vendor, monkeypatch):
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    reads = []
    real = requests.Session.merge_environment_settings

    def counted(self, url, *args):
        if self.trust_env:
            reads.append(url)
        return real(self, url, *args)

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counted)
    client = _client()
    for n in range(5):
        assert client.request("GET", f"{vendor}/orders/{n}").ok
    assert reads == [vendor]
