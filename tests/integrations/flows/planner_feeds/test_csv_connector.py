"""The CSV connector: the planner fetches each warehouse's products and sales orders files from
their permanent URLs with basic auth; the files carry channel, location, ship-to, promotion,
returns (negative) and kits as components; the same data gives the same bytes; a row that leaves
the data leaves the file, and the planner deletes it."""
import base64

import pytest
from django.urls import reverse

from integrations.flows.planner_feeds import planner_feeds_refresh
from integrations.models.planner_feeds import FeedRun
from integrations.sandbox.inventory_planner_feeds import import_feeds, imported

from .conftest import FEED_PASSWORD


def auth(user="planner", password=FEED_PASSWORD):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def feed_url(name, warehouse="MAIN", code="planner"):
    return reverse("planner-feed-file", args=[code, warehouse, name])


def csv_body(live_server, warehouse="MAIN", password=FEED_PASSWORD):
    return {"csv": [{"warehouse": warehouse, "username": "planner", "password": password,
                     "products_url": live_server.url + feed_url("products.csv", warehouse),
                     "sales_orders_url": live_server.url + feed_url("sales_orders.csv", warehouse)}]}


@pytest.mark.django_db(transaction=True)
def test_rich_rows_reach_the_planner_through_the_csv_urls(world, live_server, planner_app):
    planner_feeds_refresh()
    result = import_feeds(planner_app, csv_body(live_server))["csv"]["MAIN"]
    assert result["products"]["rows"] == 2 and result["sales_orders"]["rows"] == 5
    assert result["sales_orders"]["unknown_skus"] == []
    state = imported(planner_app)["csv"]["MAIN"]
    tee = next(p for p in state["products"] if p["SKU"] == "TEE-BLK-M")
    # one stock pool for both channels: 40 on hand − 3 allocated − 1 reserved − 2 damaged − 5 in transit
    assert (tee["stock_quantity"], tee["non_sellable_quantity"], tee["non_sellable_states"]) == (
        "29", "7", "in_transit=5 damaged=2")
    assert (tee["cost_price"], tee["vendor"], tee["lead_time"]) == ("6.40", "Northern Textiles", "21")
    sales = state["sales_orders"]
    uk = [r for r in sales if r["channel"] == "shopify"]
    assert sorted((r["sku"], r["quantity"], r["price"], r["kit_sku"]) for r in uk) == [
        ("MUG-001", "2", "10.00", "GIFT-SET"), ("TEE-BLK-M", "-1", "20.00", ""), ("TEE-BLK-M", "1", "10.00", "GIFT-SET"),
        ("TEE-BLK-M", "2", "20.00", "")]
    sold = next(r for r in uk if r["quantity"] == "2" and r["sku"] == "TEE-BLK-M")
    assert (sold["location"], sold["shipping_country"], sold["shipping_region"], sold["discount_codes"], sold["tags"],
            sold["discount"], sold["currency"]) == (
        "gid://shopify/Location/1001", "GB", "ENG", "SUMMER10", "newsletter, summer-sale", "4.00", "GBP")
    eu = [r for r in sales if r["channel"] == "shopify-eu"]
    assert [(r["sku"], r["quantity"], r["currency"], r["shipping_region"]) for r in eu] == [("MUG-001", "3", "EUR", "BE")]
    assert FeedRun.objects.filter(kind="snapshot", status="succeeded", rows=5).exists()

    # The EU order is cancelled: it leaves the file, and the planner deletes it.
    world.eu_link.state = "cancelled"
    world.eu_link.save()
    planner_feeds_refresh()
    again = import_feeds(planner_app, csv_body(live_server))["csv"]["MAIN"]
    assert again["sales_orders"]["rows"] == 4 and len(again["sales_orders"]["deleted"]) == 1
    assert not [r for r in imported(planner_app)["csv"]["MAIN"]["sales_orders"] if r["channel"] == "shopify-eu"]


@pytest.mark.django_db(transaction=True)
def test_the_planner_with_a_wrong_password_imports_nothing(world, live_server, planner_app):
    planner_feeds_refresh()
    result = import_feeds(planner_app, csv_body(live_server, password="guess"))["csv"]["MAIN"]
    assert result["products"]["status"] == 401 and result["sales_orders"]["status"] == 401
    assert imported(planner_app)["csv"]["MAIN"]["products"] == []


@pytest.mark.django_db
def test_a_regenerated_snapshot_is_byte_identical(world, client):
    planner_feeds_refresh()
    first = b"".join(client.get(feed_url("sales_orders.csv"), **auth()).streaming_content)
    planner_feeds_refresh()  # nothing changed: nothing moves
    second = b"".join(client.get(feed_url("sales_orders.csv"), **auth()).streaming_content)
    assert first == second and first.count(b"\r\n") == 6
    products = [b"".join(client.get(feed_url("products.csv"), **auth()).streaming_content) for _ in range(2)]
    assert products[0] == products[1]


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [
    {}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"planner:wrong").decode()},
    {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"someone:{FEED_PASSWORD}".encode()).decode()},
    {"HTTP_AUTHORIZATION": "Basic not-base64!"}, {"HTTP_AUTHORIZATION": f"Bearer {FEED_PASSWORD}"},
])
def test_the_feed_url_without_or_with_wrong_credentials_is_401(world, client, headers):
    response = client.get(feed_url("products.csv"), **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert FEED_PASSWORD.encode() not in response.content


@pytest.mark.django_db
def test_a_connection_without_a_feed_password_serves_nothing(world, client):
    world.planner.credentials = {}
    world.planner.save()
    assert client.get(feed_url("products.csv"), **auth()).status_code == 401


@pytest.mark.django_db
def test_the_planner_checks_the_file_with_head_and_unknown_files_are_404(world, client):
    response = client.head(feed_url("products.csv"), **auth())
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert client.get(feed_url("products.csv", warehouse="NORTH"), **auth()).status_code == 404
    assert client.get(feed_url("returns.csv"), **auth()).status_code == 404
    assert client.post(feed_url("products.csv"), **auth()).status_code == 405


@pytest.mark.django_db
def test_a_fetch_that_ends_early_is_recorded_as_failed(world):
    from integrations.flows.planner_feeds import snapshot_stream

    planner_feeds_refresh()
    stream = snapshot_stream(connection=world.planner, warehouse="MAIN", kind="sales_orders")
    assert next(stream).startswith(b"order_id,line_id,created_at,sku")
    stream.close()  # the planner hung up
    run = FeedRun.objects.get(kind="snapshot")
    assert run.status == "failed" and "ended before" in run.errors[0]
