"""The commercetools sandbox over real HTTP, as a client without our connector sees it: ErrorResponse
bodies on every route, AuthErrorResponse from the token endpoint, scopes that bound what a token
reaches, and the `order-number=` and `key=` lookup routes."""
import ast
from pathlib import Path

import pytest
import requests

PROJECT = "ledgerline-demo"


@pytest.fixture
def ct(sandbox):
    sandbox.commercetools.seed_demo()
    return sandbox.commercetools


@pytest.fixture
def api(sandbox):
    return f"{sandbox.url}/commercetools/{PROJECT}"


def ask_token(sandbox, client=("sandbox-client", "sandbox-secret"), **form):
    return requests.post(f"{sandbox.url}/commercetools/auth/oauth/token", auth=client,
                         data={"grant_type": "client_credentials", **form}, timeout=5)


def bearer(sandbox, client=("sandbox-client", "sandbox-secret"), scope=None) -> dict:
    response = ask_token(sandbox, client, **({"scope": scope} if scope else {}))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_error_response(response, status: int, code: str) -> dict:
    """The documented ErrorResponse: statusCode, message (the first error's), errors[{code, message}]."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["statusCode"] == status
    assert body["errors"][0]["code"] == code
    assert body["message"] == body["errors"][0]["message"] and body["message"]
    return body


def assert_auth_error_response(response, status: int, error: str) -> dict:
    """The documented AuthErrorResponse: an ErrorResponse plus OAuth's error and error_description."""
    body = assert_error_response(response, status, error)
    assert body["error"] == error
    assert body["error_description"] == body["message"]
    return body


# --- error shapes on every route ---------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/{PROJECT}/carts", f"/{PROJECT}/orders/some-id/lines", "/", "/auth/oauth/nope"])
def test_an_unknown_route_is_a_404_resource_not_found(sandbox, ct, path):
    response = requests.get(f"{sandbox.url}/commercetools{path}", headers=bearer(sandbox), timeout=5)

    assert_error_response(response, 404, "ResourceNotFound")


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", f"/{PROJECT}/orders", "GET, POST"),
    ("DELETE", f"/{PROJECT}/channels/some-id", "GET, POST"),
    ("POST", f"/{PROJECT}/product-projections", "GET"),
    ("GET", "/auth/oauth/token", "POST"),
])
def test_a_wrong_method_is_a_405_method_not_allowed(sandbox, ct, method, path, allowed):
    response = requests.request(method, f"{sandbox.url}/commercetools{path}", headers=bearer(sandbox), timeout=5)

    assert_error_response(response, 405, "MethodNotAllowed")
    assert response.headers["Allow"] == allowed


@pytest.mark.parametrize("path, body", [
    ("channels", b'{"key": "east", '),
    ("channels", b"[]"),
    ("channels", b""),
    ("customers", b"\xff\xfe"),
    ("customers", b'{"email": 42}'),
    ("inventory", b'{"sku": "MUG-001", "quantityOnStock": "ten"}'),
    ("inventory", b'{"quantityOnStock": 1}'),
], ids=["truncated", "array", "empty", "not-utf8", "email-not-a-string", "quantity-not-a-number", "no-sku"])
def test_a_body_that_is_not_the_expected_json_is_a_400_invalid_json_input(sandbox, ct, api, path, body):
    response = requests.post(f"{api}/{path}", data=body, timeout=5,
                             headers={**bearer(sandbox), "Content-Type": "application/json"})

    error = assert_error_response(response, 400, "InvalidJsonInput")["errors"][0]
    assert error["message"] == "Request body does not contain valid JSON."
    assert error["detailedErrorMessage"]


@pytest.mark.parametrize("update", [
    {"version": "1", "actions": []},
    {"version": 1, "actions": "changePaymentState"},
    {"version": 1, "actions": ["changePaymentState"]},
    {"version": 1, "actions": [{"action": "changePaymentState", "paymentState": "Settled"}]},
    {"version": 1, "actions": [{"action": "changeOrderState"}]},
], ids=["version-as-string", "actions-not-a-list", "action-not-an-object", "unknown-payment-state", "no-order-state"])
def test_a_malformed_update_is_a_400_and_changes_nothing(sandbox, ct, api, update):
    order = ct.create_order(payment_state="Pending")

    response = requests.post(f"{api}/orders/{order['id']}", json=update, headers=bearer(sandbox), timeout=5)

    assert_error_response(response, 400, "InvalidJsonInput")
    assert (ct.orders[order["id"]]["version"], ct.orders[order["id"]]["paymentState"]) == (1, "Pending")


def test_the_admin_endpoints_refuse_invalid_json_too(sandbox, ct):
    response = requests.post(f"{sandbox.url}/commercetools/_sandbox/orders", data=b"{", timeout=5)

    assert_error_response(response, 400, "InvalidJsonInput")


# --- the token endpoint -------------------------------------------------------------------------


def test_a_token_asked_without_scope_carries_every_scope_the_client_holds(sandbox, ct):
    ct.add_api_client("reader", "reader-secret", [f"view_orders:{PROJECT}", f"view_products:{PROJECT}"])

    body = ask_token(sandbox, ("reader", "reader-secret")).json()

    assert body["scope"] == f"view_orders:{PROJECT} view_products:{PROJECT}"
    assert body["token_type"] == "Bearer" and body["expires_in"] == ct.token_ttl


def test_a_client_may_ask_for_less_than_it_holds(sandbox, ct):
    body = ask_token(sandbox, scope=f"view_orders:{PROJECT} manage_customers:{PROJECT}").json()

    assert body["scope"] == f"view_orders:{PROJECT} manage_customers:{PROJECT}"


@pytest.mark.parametrize("scope", [
    f"manage_orders:{PROJECT}",  # the client holds view_orders only
    "view_orders:another-project",  # nor anything in another project
    f"view_orders:{PROJECT} manage_everything:{PROJECT}",  # no such scope
    "view_orders",  # no project
])
def test_a_scope_the_client_does_not_hold_is_400_invalid_scope(sandbox, ct, scope):
    ct.add_api_client("reader", "reader-secret", [f"view_orders:{PROJECT}"])

    response = ask_token(sandbox, ("reader", "reader-secret"), scope=scope)

    body = assert_auth_error_response(response, 400, "invalid_scope")
    assert scope.split()[-1] in body["error_description"]
    assert ct.tokens_issued == 0


@pytest.mark.parametrize("client", [("sandbox-client", "wrong"), ("nobody", "sandbox-secret"), ("", "")])
def test_unknown_client_credentials_are_401_invalid_client(sandbox, ct, client):
    assert_auth_error_response(ask_token(sandbox, client), 401, "invalid_client")


def test_another_grant_type_is_400_unsupported_grant_type(sandbox, ct):
    response = ask_token(sandbox, grant_type="password")

    assert_auth_error_response(response, 400, "unsupported_grant_type")


# --- scopes on the API --------------------------------------------------------------------------


def test_a_view_orders_token_reads_orders_but_cannot_move_inventory(sandbox, ct, api):
    ct.add_api_client("reader", "reader-secret", [f"view_orders:{PROJECT}"])
    entry = ct.create_inventory_entry(sku="MUG-001", channel_key="main-warehouse", quantity_on_stock=10)
    order = ct.create_order(order_number="WEB-1")
    headers = bearer(sandbox, ("reader", "reader-secret"))

    read = requests.get(f"{api}/orders/{order['id']}", headers=headers, timeout=5)
    push = requests.post(f"{api}/inventory/{entry['id']}", headers=headers, timeout=5,
                         json={"version": 1, "actions": [{"action": "addQuantity", "quantity": 5}]})

    assert read.status_code == 200
    body = assert_auth_error_response(push, 403, "insufficient_scope")
    assert body["message"] == f"Insufficient scope. One of the following scopes is missing: manage_products:{PROJECT}"
    assert ct.inventory[entry["id"]]["quantityOnStock"] == 10


@pytest.mark.parametrize("method, path, granted", [
    ("GET", "orders", "manage_orders"),  # manage_X grants view_X
    ("GET", "channels", "view_products"),  # channels answer view_channels or view_products
    ("GET", "product-projections", "view_published_products"),
    ("POST", "customers/key=nobody", "manage_customers"),
])
def test_a_route_answers_any_scope_the_reference_lists_for_it(sandbox, ct, api, method, path, granted):
    ct.add_api_client("narrow", "narrow-secret", [f"{granted}:{PROJECT}"])

    response = requests.request(method, f"{api}/{path}", headers=bearer(sandbox, ("narrow", "narrow-secret")),
                                json={"version": 1, "actions": []}, timeout=5)

    assert response.status_code in (200, 404), response.text  # reached the route (a missing key is a 404)


def test_a_token_for_another_project_is_403_insufficient_scope(sandbox, ct, api):
    ct.add_api_client("elsewhere", "elsewhere-secret", ["manage_project:another-project"])

    response = requests.get(f"{api}/orders", headers=bearer(sandbox, ("elsewhere", "elsewhere-secret")), timeout=5)

    body = assert_auth_error_response(response, 403, "insufficient_scope")
    assert f"view_orders:{PROJECT}" in body["message"]


def test_an_unknown_project_is_404_for_a_token_that_covers_it(sandbox, ct):
    ct.add_api_client("elsewhere", "elsewhere-secret", ["view_orders:another-project"])
    headers = bearer(sandbox, ("elsewhere", "elsewhere-secret"))

    response = requests.get(f"{sandbox.url}/commercetools/another-project/orders", headers=headers, timeout=5)

    assert_error_response(response, 404, "ResourceNotFound")


def test_an_api_client_can_be_added_from_another_process(sandbox, ct, api):
    created = requests.post(f"{sandbox.url}/commercetools/_sandbox/api-clients", timeout=5,
                            json={"id": "reader", "secret": "reader-secret", "scope": f"view_orders:{PROJECT}"})
    refused = requests.post(f"{sandbox.url}/commercetools/_sandbox/api-clients", timeout=5,
                            json={"id": "odd", "secret": "odd-secret", "scope": "view_everything:x"})

    assert created.status_code == 201 and created.json()["scope"] == f"view_orders:{PROJECT}"
    assert_error_response(refused, 400, "InvalidInput")
    headers = bearer(sandbox, ("reader", "reader-secret"))
    assert requests.get(f"{api}/orders", headers=headers, timeout=5).status_code == 200
    assert requests.get(f"{api}/customers", headers=headers, timeout=5).status_code == 403


# --- lookups by order number and key ------------------------------------------------------------


def test_an_order_is_read_and_updated_by_its_url_encoded_order_number(sandbox, ct, api):
    order = ct.create_order(order_number="WEB/2024 #7+ä")
    ct.create_order(order_number="WEB")  # a prefix of the other must not match it
    encoded = "WEB%2F2024%20%237%2B%C3%A4"

    read = requests.get(f"{api}/orders/order-number={encoded}", headers=bearer(sandbox), timeout=5)
    paid = requests.post(f"{api}/orders/order-number={encoded}", headers=bearer(sandbox), timeout=5, json={
        "version": 1, "actions": [{"action": "changePaymentState", "paymentState": "Paid"}]})

    assert read.status_code == 200 and read.json()["id"] == order["id"]
    assert paid.status_code == 200 and paid.json()["paymentState"] == "Paid"
    assert ct.orders[order["id"]]["version"] == 2


def test_an_unknown_order_number_is_404_resource_not_found(sandbox, ct, api):
    response = requests.get(f"{api}/orders/order-number=NOPE-1", headers=bearer(sandbox), timeout=5)

    body = assert_error_response(response, 404, "ResourceNotFound")
    assert "NOPE-1" in body["message"]


@pytest.mark.parametrize("resource", ["channels", "customers", "inventory", "product-projections"])
def test_a_resource_is_read_by_its_key(sandbox, ct, api, resource):
    expected = {
        "channels": lambda: ct.channel_by_key("main-warehouse"),
        "customers": lambda: ct.create_customer(email="ada@example.com", key="ada-lovelace"),
        "inventory": lambda: ct.create_inventory_entry(sku="MUG-001", channel_key="north-store", key="mug-north"),
        "product-projections": lambda: next(p for p in ct.products.values() if p["key"] == "enamel-mug"),
    }[resource]()

    response = requests.get(f"{api}/{resource}/key={expected['key']}", headers=bearer(sandbox), timeout=5)
    missing = requests.get(f"{api}/{resource}/key=no-such-key", headers=bearer(sandbox), timeout=5)

    assert response.status_code == 200 and response.json()["id"] == expected["id"]
    assert_error_response(missing, 404, "ResourceNotFound")


def test_a_channel_is_updated_by_key_with_its_version_checked(sandbox, ct, api):
    response = requests.post(f"{api}/channels/key=main-warehouse", headers=bearer(sandbox), timeout=5,
                             json={"version": 7, "actions": []})

    assert_error_response(response, 409, "ConcurrentModification")


def test_orders_have_no_key_route(sandbox, ct, api):
    """The HTTP API has no orders/key= (Orders are found by id or orderNumber): it reads as an id."""
    response = requests.get(f"{api}/orders/key=WEB-1", headers=bearer(sandbox), timeout=5)

    body = assert_error_response(response, 404, "ResourceNotFound")
    assert "ID 'key=WEB-1'" in body["message"]


# --- a separate world -------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["commercetools.py", "ct_predicates.py"])
def test_the_sandbox_imports_nothing_from_the_product(module):
    source = (Path(__file__).resolve().parents[3] / "integrations" / "sandbox" / module).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)

    product = {"integrations", "mappings", "exceptions_queue", "config"}
    assert {name for name in imported if name.split(".")[0] in product} <= {
        name for name in imported if name.startswith("integrations.sandbox")}
