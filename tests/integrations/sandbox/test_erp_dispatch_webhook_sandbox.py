"""The sandbox REST ERP pushes each confirmed dispatch to a configured URL, signed over the raw body
(X-Erp-Signature: sha256=<hex HMAC>), retries a failed delivery, and redelivers one unchanged."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests


class Receiver:
    def __init__(self, statuses=()):
        self.received, self.statuses = [], list(statuses)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(owner.statuses.pop(0) if owner.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def posted(sandbox):
    erp = sandbox.erp
    erp.add_item("MUG-001")
    erp.add_depot("MAIN")
    customer = erp.customers_add(email="a@example.com", name="A")
    answer = requests.post(f"{sandbox.url}/erp/api/v1/sales-orders", headers={"Authorization": "Bearer sandbox-erp-key"},
                           json={"external_reference": "shop:1", "customer_id": customer["id"], "currency": "GBP",
                                 "depot": "MAIN", "order_date": "2026-11-20", "total": "9.50",
                                 "lines": [{"item_code": "MUG-001", "description": "Mug", "quantity": 2,
                                            "unit_price": "4.75", "line_total": "9.50", "line_reference": "L1"}]},
                           timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_a_confirmed_dispatch_is_pushed_signed_and_a_draft_only_once_confirmed(sandbox, posted):
    receiver = Receiver()
    sandbox.erp.configure_webhook(url=receiver.url, secret="s3cret", mode="sync")
    booked = sandbox.erp.dispatch_order(posted, lines=[{"item_code": "MUG-001", "quantity": 1}], draft=True)
    assert receiver.received == []
    sandbox.erp.confirm_dispatch(booked["dispatches"][0]["id"])
    [delivery] = receiver.received
    body = json.loads(delivery["body"])
    assert body["event"] == "dispatch.confirmed" and body["data"]["id"] == booked["dispatches"][0]["id"]
    assert body["data"]["lines"][0]["line_reference"] == "L1" and body["data"]["status"] == "confirmed"
    expected = "sha256=" + hmac.new(b"s3cret", delivery["body"], hashlib.sha256).hexdigest()
    assert delivery["headers"]["X-Erp-Signature"] == expected


def test_a_failed_delivery_is_retried_and_a_redelivery_is_the_same_message(sandbox, posted):
    receiver = Receiver(statuses=[500])
    sandbox.erp.configure_webhook(url=receiver.url, secret="s3cret", mode="sync", retry_delays=[0.01])
    sandbox.erp.dispatch_order(posted)
    assert [r["body"] for r in receiver.received][0] == receiver.received[-1]["body"]
    assert len(receiver.received) == 2 and sandbox.erp.webhook_deliveries[0]["delivered"]
    answer = requests.post(f"{sandbox.url}/erp/_sandbox/webhooks/{sandbox.erp.webhook_deliveries[0]['id']}/redeliver",
                           timeout=5)
    assert answer.json() == {"status": 200}
    assert receiver.received[-1]["body"] == receiver.received[0]["body"]
    assert receiver.received[-1]["headers"]["X-Erp-Delivery"] == receiver.received[0]["headers"]["X-Erp-Delivery"]


def test_the_webhook_is_configured_over_http_and_bad_settings_are_a_400(sandbox):
    ok = requests.post(f"{sandbox.url}/erp/_sandbox/webhooks", json={"url": "http://127.0.0.1:9/x", "secret": "k"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["secret_set"] is True
    bad = requests.post(f"{sandbox.url}/erp/_sandbox/webhooks", json={"mode": "sometimes"}, timeout=5)
    assert bad.status_code == 400
