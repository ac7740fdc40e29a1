"""The commercetools connector against the `commercetools` package's own emulator (third party).

`backend_mocker()` answers `requests` calls in-process for the real commercetools host names; it
is nested inside a strict `requests_mock.Mocker(real_http=False)` so a request the emulator does not
answer fails instead of leaking to the network. One test serves the emulator's WSGI `Server` over
real HTTP.

What the emulator cannot model is tested against our sandbox only (test_commercetools_connector.py,
test_commercetools_poll.py): it ignores `sort` and `offset`, never moves `lastModifiedAt` (so no
cursor pagination or poller resume), never rejects a token (so no refresh after expiry), applies
only the first of several `where` parameters, and keeps availableQuantity equal to quantityOnStock
(no reservations). Nor does it model errors or scopes (test_commercetools_sandbox.py): its 404s have
an empty body, a wrong method is a 404 (no 405), a malformed body raises inside the emulator instead
of answering 400 InvalidJsonInput (a duplicate key raises too; a duplicate e-mail is accepted), it
has no `orders/order-number=` route (the number is read as an id, so only an unknown number agrees),
and its token endpoint grants any scope to any client (answering `scope` as a list), so neither
`invalid_scope` nor 403 `insufficient_scope` ever happens.
"""
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
import requests_mock
from commercetools.testing import backend_mocker
from commercetools.testing.server import Server

from integrations.connectors.base import Conflict, NotFound
from integrations.connectors.commercetools import CommercetoolsClient

API_URL = "https://api.europe-west1.gcp.commercetools.com"
AUTH_URL = "https://auth.europe-west1.gcp.commercetools.com"
PROJECT = "ledgerline-emu"


def make_client(api_url=API_URL, auth_url=AUTH_URL):
    return CommercetoolsClient(
        api_url, auth_url, PROJECT, "emu-client", "emu-secret",
        scope=f"manage_project:{PROJECT}", max_attempts=1, sleep=lambda _: None,
    )


@pytest.fixture
def emulator():
    with requests_mock.Mocker(real_http=False), backend_mocker() as repo:
        yield repo


@pytest.fixture
def client(emulator):
    return make_client()


def create_product(client, sku: str) -> str:
    """orders/import in the emulator needs the productId of an existing product."""
    product_type = client.api("POST", "product-types", json={"name": "Apparel", "description": "Apparel"})
    product = client.api("POST", "products", json={
        "productType": {"typeId": "product-type", "id": product_type["id"]},
        "name": {"en": sku.title()},
        "slug": {"en": sku.lower()},
        "masterVariant": {"sku": sku},
        "publish": True,
    })
    return product["id"]


def import_order(client, *, order_number: str, sku: str, cent_amount: int, quantity: int, payment_state: str) -> dict:
    product_id = create_product(client, sku)
    # No taxRate: the emulator's import crashes building a TaxedItemPrice without taxPortions.
    # customLineItems must be present: it iterates the list without a default.
    return client.api("POST", "orders/import", json={
        "orderNumber": order_number,
        "paymentState": payment_state,
        "lineItems": [{
            "productId": product_id,
            "name": {"en": sku.title()},
            "variant": {"sku": sku},
            "price": {"value": {"currencyCode": "EUR", "centAmount": cent_amount}},
            "quantity": quantity,
        }],
        "customLineItems": [],
        "totalPrice": {"currencyCode": "EUR", "centAmount": cent_amount * quantity},
    })


def test_nothing_leaks_past_the_emulator(emulator):
    with pytest.raises(requests_mock.exceptions.NoMockAddress):
        requests.get("https://elsewhere.example.com/", timeout=1)


def test_it_fetches_a_token_with_basic_auth_and_client_credentials(client, emulator):
    client.list_channels()
    client.list_channels()

    token_requests = [r for r in emulator.requests_mock.request_history if r.path == "/oauth/token"]
    assert len(token_requests) == 1  # cached between calls
    assert token_requests[0].headers["Authorization"].startswith("Basic ")
    assert token_requests[0].text == f"grant_type=client_credentials&scope=manage_project%3A{PROJECT}"
    api_requests = [r for r in emulator.requests_mock.request_history if r.path.startswith(f"/{PROJECT}/")]
    assert api_requests and all(r.headers["Authorization"] == f"Bearer {client._token}" for r in api_requests)


def test_a_token_about_to_expire_is_fetched_again(client, emulator):
    emulator.auth.set_expire_time(0)

    client.list_channels()
    client.list_channels()

    assert len(emulator.auth.model.tokens) == 2


def test_create_then_find_customer_by_email(client):
    created = client.create_customer(email="ada@example.com", first_name="Ada", last_name="Lovelace")

    assert [c["id"] for c in client.find_customers_by_email("ada@example.com")] == [created["id"]]
    assert created["firstName"] == "Ada"
    assert client.find_customers_by_email("nobody@example.com") == []


def test_query_orders_with_one_condition_and_get_by_id(client):
    paid = import_order(client, order_number="EMU-1", sku="TEE-RED-M", cent_amount=1999, quantity=2,
                        payment_state="Paid")
    import_order(client, order_number="EMU-2", sku="MUG", cent_amount=900, quantity=1, payment_state="Pending")

    page = client.query_orders(where='paymentState = "Paid"')
    fetched = client.get_order(paid["id"])

    assert [o["orderNumber"] for o in page["results"]] == ["EMU-1"]
    assert page["total"] == 1
    order = CommercetoolsClient.order_from_payload(fetched)
    assert (order.order_number, order.payment_state, order.currency) == ("EMU-1", "Paid", "EUR")
    assert [(line.sku, line.quantity, str(line.unit_price)) for line in order.lines] == [("TEE-RED-M", 2, "19.99")]
    assert str(order.total) == "39.98"


def test_an_unknown_order_is_not_found(client):
    with pytest.raises(NotFound):
        client.get_order("00000000-0000-0000-0000-000000000000")


def test_an_unknown_order_number_is_none(client):
    assert client.get_order_by_number("WEB/2024 #7") is None


def test_an_unknown_route_is_not_found_here_too(client):
    # The emulator answers an empty 404; our sandbox a ResourceNotFound body: the connector raises
    # the same NotFound for both.
    with pytest.raises(NotFound) as excinfo:
        client.api("GET", "carts-that-do-not-exist")

    assert excinfo.value.status == 404


def test_a_customer_is_read_by_key(client):
    created = client.create_customer(email="ada@example.com", key="ada-lovelace")

    found = client.api("GET", "customers/key=ada-lovelace")

    assert found["id"] == created["id"]
    with pytest.raises(NotFound):
        client.api("GET", "customers/key=no-such-key")


@pytest.fixture
def warehouse(client):
    return client.api("POST", "channels", json={"key": "main-warehouse", "roles": ["InventorySupply"]})


def test_inventory_quantity_actions_move_stock_and_version(client, warehouse):
    created = client.create_inventory_entry(sku="TEE-RED-M", channel_id=warehouse["id"], quantity_on_stock=10)
    entry = client.get_inventory_entry("TEE-RED-M", warehouse["id"])
    assert entry["id"] == created["id"]

    added = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 5}])
    removed = client.update_inventory_entry(added["id"], added["version"], [{"action": "removeQuantity", "quantity": 3}])
    changed = client.update_inventory_entry(removed["id"], removed["version"],
                                            [{"action": "changeQuantity", "quantity": 40}])

    assert [e["quantityOnStock"] for e in (added, removed, changed)] == [15, 12, 40]
    assert [e["version"] for e in (added, removed, changed)] == [2, 3, 4]
    # The emulator keeps no reservations: availableQuantity always equals quantityOnStock here.
    # The reservation-survives-a-push test runs against our sandbox.
    assert client.get_inventory_entry("TEE-RED-M", warehouse["id"])["quantityOnStock"] == 40


def test_a_stale_inventory_version_is_a_conflict_with_the_current_version(client, warehouse):
    entry = client.create_inventory_entry(sku="MUG", channel_id=warehouse["id"], quantity_on_stock=10)
    client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 1}])

    with pytest.raises(Conflict) as excinfo:
        client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 5}])

    assert excinfo.value.current_version == 2
    assert excinfo.value.code == "ConcurrentModification"
    assert client.get_inventory_entry("MUG", warehouse["id"])["quantityOnStock"] == 11


def test_an_inventory_entry_is_looked_up_per_channel(client, warehouse):
    client.create_inventory_entry(sku="MUG", channel_id=warehouse["id"], quantity_on_stock=10)

    # One `where` with a lowercase `and`: the emulator honours both conditions in that form.
    assert client.get_inventory_entry("MUG", "00000000-0000-0000-0000-000000000000") is None
    assert client.get_inventory_entry("TEE", warehouse["id"]) is None


def test_published_product_variants_are_listed(client):
    # One page only: the emulator ignores `where`, so the id cursor cannot be exercised here
    # (test_commercetools_connector.py pages through our sandbox).
    tee = create_product(client, "TEE-RED-M")
    mug = create_product(client, "MUG-001")
    variants = list(client.list_variants())
    assert sorted((v["sku"], v["product_id"]) for v in variants) == sorted([("TEE-RED-M", tee), ("MUG-001", mug)])
    assert {v["product_title"] for v in variants} == {"Tee-Red-M", "Mug-001"}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def emulator_over_http():
    """The emulator's WSGI Server on 127.0.0.1; it answers only for the host name `localhost`."""
    server = Server()
    httpd = make_server("127.0.0.1", 0, server, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}", server.repository
    httpd.shutdown()
    httpd.server_close()


def test_the_connector_works_over_real_http_against_the_emulator_server(emulator_over_http):
    base, repository = emulator_over_http
    client = make_client(api_url=base, auth_url=base)

    customer = client.create_customer(email="grace@example.com", first_name="Grace")
    channel = client.api("POST", "channels", json={"key": "north-store", "roles": ["InventorySupply"]})
    entry = client.create_inventory_entry(sku="TEE", channel_id=channel["id"], quantity_on_stock=3)
    added = client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 2}])

    # No query endpoints here: the Server builds its request from the full URL *and* params=req.GET,
    # so every query parameter arrives twice and `limit=20&limit=20` fails validation (a 500).
    # Queries are covered in-process above.
    assert client.api("GET", f"customers/{customer['id']}")["email"] == "grace@example.com"
    assert client.api("GET", f"inventory/{entry['id']}")["quantityOnStock"] == 5
    assert added["version"] == 2
    with pytest.raises(Conflict) as excinfo:
        client.update_inventory_entry(entry["id"], entry["version"], [{"action": "addQuantity", "quantity": 1}])
    assert excinfo.value.current_version == 2
    assert len(repository.auth.model.tokens) == 1
