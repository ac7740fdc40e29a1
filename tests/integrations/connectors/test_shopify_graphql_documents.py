"""Every GraphQL document the Shopify connector sends is valid on Shopify's published Admin schema of the
configured API version and of the one before it (tests/data/shopify, see its SOURCES.md), with the
variables it really sends; and it sends what 2026-04 requires at run time, which no schema says."""
import ast
import inspect
import lzma
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from django.conf import settings
from graphql import GraphQLError, OperationDefinitionNode, build_ast_schema, parse, validate
from graphql.execution.values import get_variable_values

from integrations.connectors import shopify as connector
from integrations.connectors.shopify import API_VERSIONS, ShopifyClient

DATA = Path(__file__).resolve().parents[2] / "data" / "shopify"
CONFIGURED = settings.SHOPIFY["api_version"]
PREVIOUS = API_VERSIONS[API_VERSIONS.index(CONFIGURED) - 1]
VERSIONS = [CONFIGURED, PREVIOUS]
# 2026-04: these mutations are refused at run time without @idempotent (Shopify changelog, 2025-12-12).
IDEMPOTENT_MUTATIONS = {"inventorySetQuantities", "inventoryAdjustQuantities", "inventoryMoveQuantities"}
# Module-level functions that build a document, each with arguments like the connector's own.
DOCUMENT_BUILDERS = {"_levels_document": lambda build: build(3, 2, connector.QUANTITY_NAMES)}


@lru_cache(maxsize=None)
def schema(version: str):
    """The published SDL, parsed whole. Built assuming it valid: Shopify's dump breaks a rule
    graphql-core checks (deprecated implementations of undeprecated interface fields)."""
    text = lzma.decompress((DATA / f"{version}.graphql.xz").read_bytes()).decode("utf-8")
    return build_ast_schema(parse(text, no_location=True), assume_valid=True, assume_valid_sdl=True)


def problems(version: str, query: str, variables: dict | None = None) -> list[str]:
    """Why Shopify's schema of `version` refuses the document (or, given, the variables it is sent with)."""
    document = parse(query)
    errors = [error.message for error in validate(schema(version), document)]
    if errors or variables is None:
        return errors
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    coerced = get_variable_values(schema(version), operation.variable_definitions or (), variables)
    return [error.message for error in coerced] if isinstance(coerced, list) else []


def module_documents() -> dict[str, str]:
    """Every module-level string of the connector that is a GraphQL operation, whatever its name."""
    found = {}
    for name, value in vars(connector).items():
        if not isinstance(value, str):
            continue
        try:
            document = parse(value)
        except GraphQLError:
            continue
        if any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
            found[name] = value
    return found


def built_documents() -> dict[str, str]:
    return {name: make(getattr(connector, name)) for name, make in DOCUMENT_BUILDERS.items()}


class RecordingShopify(ShopifyClient):
    """The real client with the transport replaced: records every (document, variables) it would send
    and answers each root field with an empty page or an empty mutation payload."""

    def __init__(self):
        super().__init__("http://recording.invalid", "shpat_recording", CONFIGURED)
        self.sent: list[tuple[str, dict]] = []

    def graphql(self, query, variables=None, *, expected_cost=None):
        self.sent.append((query, variables or {}))
        (operation,) = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
        data = {}
        for field in operation.selection_set.selections:
            key = field.alias.value if field.alias else field.name.value
            if operation.operation.value == "mutation":
                data[key] = {"inventoryAdjustmentGroup": None, "userErrors": []}
            elif field.name.value in ("productVariants", "locations", "orders"):
                data[key] = {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
            else:
                data[key] = None
        return data


def drive(client: ShopifyClient) -> None:
    """Every public call of the connector that talks GraphQL, with the kinds of input flows give it."""
    item, location = "gid://shopify/InventoryItem/1", "gid://shopify/Location/1"
    list(client.list_variants())
    client.find_variants_by_sku(["TEE-BLK-S", 'ODD"SKU'])
    client.list_locations()
    client.inventory_levels([item, "2"], [location])
    client.set_available_quantities([
        {"inventory_item_id": item, "location_id": location, "quantity": 5, "change_from": 3},
        {"inventory_item_id": "3", "location_id": "1", "quantity": 0, "change_from": None},
    ], reference="ledgerline://inventory-run/1")
    client.set_available_quantities([{"inventory_item_id": item, "location_id": location, "quantity": 2, "change_from": 1}],
                                    name="on_hand", reason="cycle_count_available", idempotency_key="run/1")
    client.adjust_available_quantities([
        {"inventory_item_id": item, "location_id": location, "delta": 2},
        {"inventory_item_id": "4", "location_id": location, "delta": -1, "change_from": 7},
    ], reason="received")
    list(client.orders_updated_since(datetime(2026, 11, 30, tzinfo=timezone.utc)))
    list(client.orders_updated_since())


@pytest.fixture(scope="module")
def sent() -> list[tuple[str, dict]]:
    client = RecordingShopify()
    drive(client)
    return client.sent


def test_the_configured_version_and_the_one_before_have_their_published_schema_here():
    assert CONFIGURED == "2026-04" and PREVIOUS == "2026-01"
    sources = (DATA / "SOURCES.md").read_text()
    for version in VERSIONS:
        assert (DATA / f"{version}.graphql.xz").exists()
        assert f"`{version}.graphql.xz`" in sources
        assert schema(version).mutation_type.fields["inventorySetQuantities"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted({**module_documents(), **DOCUMENT_BUILDERS}))
def test_every_document_of_the_connector_is_valid_on_the_published_schema(version, name):
    query = {**module_documents(), **built_documents()}[name]
    assert problems(version, query) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_sent_is_valid_with_the_variables_it_is_sent_with(sent, version):
    assert sent
    for query, variables in sent:
        assert problems(version, query, variables) == [], query


def test_the_calls_driven_here_send_every_document_the_connector_defines(sent):
    # A new document constant needs a call in drive() that sends it, so its variables are checked too.
    queries = {query for query, _ in sent}
    assert set(module_documents().values()) <= queries
    assert {name for name, value in vars(connector).items()
            if callable(value) and name.endswith("_document")} == set(DOCUMENT_BUILDERS)


def test_no_document_is_written_outside_a_module_constant_or_builder():
    tree = ast.parse(inspect.getsource(connector))
    allowed = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) or (
                isinstance(node, ast.FunctionDef) and node.name.endswith("_document")):
            allowed |= {id(n) for n in ast.walk(node)}
    looks_like_graphql = re.compile(r"\s*(?:(?:query|mutation|subscription)\b[^.]*[({]|\{\s*\w+\s*[({])")
    inline = []
    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        else:
            continue
        if looks_like_graphql.match(text):
            inline.append((node.lineno, text[:60]))
    assert inline == []


def test_inventory_mutations_carry_what_2026_04_requires_at_run_time(sent):
    mutations = 0
    for query, variables in sent:
        (operation,) = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
        if operation.operation.value != "mutation":
            continue
        for field in operation.selection_set.selections:
            assert field.name.value in IDEMPOTENT_MUTATIONS
            mutations += 1
            (directive,) = [d for d in field.directives if d.name.value == "idempotent"]
            (key,) = [a for a in directive.arguments if a.name.value == "key"]
            assert variables[key.value.name.value].strip()  # a non-empty key, sent as a variable
        entries = variables["input"].get("quantities") or variables["input"].get("changes")
        assert entries and all("changeFromQuantity" in entry for entry in entries)  # explicit, null included
    assert mutations == 3


def test_each_logical_change_has_its_own_key_and_a_resend_the_same(sent):
    keys = [variables["idempotencyKey"] for query, variables in sent if "idempotencyKey" in variables]
    assert len(keys) == len(set(keys)) == 3
    again = RecordingShopify()
    change = [{"inventory_item_id": "1", "location_id": "1", "quantity": 2, "change_from": 1}]
    again.set_available_quantities(change, idempotency_key="run/9")
    again.set_available_quantities(change, idempotency_key="run/9")
    again.set_available_quantities(change, idempotency_key="run/10")
    first, repeat, other = (v["idempotencyKey"] for _, v in again.sent)
    assert first == repeat != other


def test_the_validator_refuses_what_the_version_does_not_have():
    # The pre-2026 compare-and-set: ignoreCompareQuantity / compareQuantity are gone from both versions.
    old_style = """mutation { inventorySetQuantities(input: {name: "available", reason: "correction",
      ignoreCompareQuantity: true, quantities: [{inventoryItemId: "gid://shopify/InventoryItem/1",
      locationId: "gid://shopify/Location/1", quantity: 1}]}) { userErrors { code } } }"""
    assert any("ignoreCompareQuantity" in p for p in problems(CONFIGURED, old_style))
    with_variables = """mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { code } } }"""
    assert problems(CONFIGURED, with_variables, {"input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1", "quantity": 1,
         "compareQuantity": 0}]}})
    # And the version matters: deliverySettings was removed in 2026-04.
    removed = "{ deliverySettings { legacyModeProfiles } }"
    assert problems("2026-01", removed) == []
    (problem,) = problems("2026-04", removed)
    assert problem.startswith("Cannot query field 'deliverySettings' on type 'QueryRoot'.")
