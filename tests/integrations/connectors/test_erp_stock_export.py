"""The REST ERP's stock export over real HTTP: a depot's every row in one NDJSON request (what the
inventory drift check reads at 100,000 items instead of 500 pages), declared as STOCK_EXPORT, which
Prima lacks (it keeps paging); and the sandbox's stock paging by key."""
import pytest
import requests

from integrations.connectors.base import STOCK_EXPORT, PermanentError, supports
from integrations.connectors.erp import RestErpClient
from integrations.connectors.prima import PrimaClient


@pytest.fixture
def erp(sandbox):
    sandbox.erp.add_depot("MAIN")
    sandbox.erp.add_depot("NORTH")
    for n in range(1, 451):
        sandbox.erp.set_stock(f"SKU-{n:04}", "MAIN", on_hand=n, allocated=n % 3, damaged=n % 2)
    sandbox.erp.set_stock("SKU-0001", "NORTH", on_hand=9)
    return sandbox.erp


def test_a_depot_is_exported_in_one_request_with_the_rows_its_pages_give(erp):
    client = RestErpClient.from_settings()
    exported = list(client.export_stock(depot="MAIN"))
    assert erp.requests_by_kind == {"stock_export": 1}
    paged = client.get_stock(depot="MAIN")
    assert erp.requests_by_kind["list_stock"] == 3  # 450 rows, 200 a page
    assert exported == paged
    assert len(exported) == 450 and {row["depot"] for row in exported} == {"MAIN"}
    assert exported[6] == {"item_code": "SKU-0007", "depot": "MAIN", "on_hand": 7, "allocated": 1, "reserved": 0,
                           "states": {"in_transit": 0, "quality_inspection": 0, "damaged": 1,
                                      "returned_awaiting_inspection": 0}}


def test_the_export_answers_ndjson_and_refuses_an_unknown_depot(erp, sandbox):
    response = requests.get(f"{sandbox.url}/erp/api/v1/stock/export", params={"depot": "NORTH"},
                            headers={"Authorization": f"Bearer {erp.api_key}"}, timeout=5)
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.text.count("\n") == 1 and '"item_code":"SKU-0001"' in response.text
    with pytest.raises(PermanentError) as refused:
        list(RestErpClient.from_settings().export_stock(depot="SOUTH"))
    assert refused.value.status == 422


def test_the_export_counts_against_the_rate_limit_like_any_request(erp):
    erp.configure(rate_limit=1)
    client = RestErpClient.from_settings()
    for _ in range(3):  # back to back: at least two fall in one second, the later answered 429 first
        assert len(list(client.export_stock(depot="MAIN"))) == 450  # read whole after Retry-After
    assert erp.rate_limited_count >= 1
    assert erp.requests_by_kind == {"stock_export": 3}


def test_only_the_rest_erp_declares_the_export_so_prima_keeps_paging():
    assert STOCK_EXPORT in RestErpClient.capabilities
    assert not supports(PrimaClient, STOCK_EXPORT)


def test_the_sandbox_pages_stock_by_key_without_repeating_or_skipping(erp, sandbox):
    seen, after = [], ""
    while after is not None:  # the first page by number, the next ones after its last item
        body = requests.get(f"{sandbox.url}/erp/api/v1/stock", params={"depot": "MAIN", "page_size": 200,
                                                                      **({"after": after} if after else {})},
                            headers={"Authorization": f"Bearer {erp.api_key}"}, timeout=5).json()
        seen += [row["item_code"] for row in body["data"]]
        after = body["next_after"]
    assert seen == [f"SKU-{n:04}" for n in range(1, 451)]
