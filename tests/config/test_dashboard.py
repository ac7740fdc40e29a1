"""The health dashboard (home page): each flow's colour follows its rule, shown beside it; failing
patterns are grouped; the dashboard refreshes itself as a fragment; its queries do not grow with data."""
import json
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.dashboard import COLOUR_RULES, dashboard_compute
from exceptions_queue.models import ExceptionRecord
from integrations.models import Dispatch, OrderLink
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_dashboard():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shop(db):
    return ConnectionFactory(code="shopify", kind="shopify")


def plant_orders(shop, n, *, state, created=None, posted=None, start=0):
    now = timezone.now()
    OrderLink.objects.bulk_create([
        OrderLink(connection=shop, storefront_order_id=f"{state}-{start + i}", order_number=f"#{start + i}",
                  state=state, created_at=created or now - timedelta(minutes=5), posted_at=posted)
        for i in range(n)])


def flow_row(html: str, flow: str) -> str:
    match = re.search(rf'<tr data-flow="{flow}" data-colour="(\w+)">(.*?)</tr>', html, re.S)
    assert match, f"no row for {flow}"
    return match.group(1) + "|" + match.group(2)


def home(client, user, **headers):
    client.force_login(user)
    return client.get("/", headers=headers)


def test_orders_are_green_while_posting_keeps_up(client, ops_user, shop):
    plant_orders(shop, 10, state="posted", posted=timezone.now() - timedelta(minutes=2))
    row = flow_row(home(client, ops_user).content.decode(), "orders")
    assert row.startswith("green|")
    assert COLOUR_RULES["orders"].green_text.replace("≤", "&le;") in row or COLOUR_RULES["orders"].green_text in row
    assert "Green" in row and "10 / 10" in row


def test_orders_turn_amber_on_a_backlog_over_the_amber_threshold(client, ops_user, shop):
    plant_orders(shop, 1, state="posted", posted=timezone.now() - timedelta(minutes=1))
    plant_orders(shop, 25, state="received")
    row = flow_row(home(client, ops_user).content.decode(), "orders")
    assert row.startswith("amber|")
    assert "amber: backlog &gt; 20 or error rate &gt; 1 % over 24 h" in row
    assert "now: backlog 25 &gt; 20" in row


def test_orders_turn_red_when_over_5_percent_fail_in_24_hours(client, ops_user, shop):
    plant_orders(shop, 94, state="posted", posted=timezone.now() - timedelta(minutes=1))
    plant_orders(shop, 6, state="failed")
    row = flow_row(home(client, ops_user).content.decode(), "orders")
    assert row.startswith("red|")
    assert "red: backlog &gt; 100 or error rate &gt; 5 % over 24 h" in row
    assert "error rate 6.0 % &gt; 5 % over 24 h (6 of 100)" in row


def test_a_waiting_flow_with_no_recent_success_is_amber_and_says_so(client, ops_user, shop):
    plant_orders(shop, 1, state="posted", created=timezone.now() - timedelta(hours=5),
                 posted=timezone.now() - timedelta(hours=3))
    plant_orders(shop, 3, state="received", start=10)
    row = flow_row(home(client, ops_user).content.decode(), "orders")
    assert row.startswith("amber|") and "3 waiting and no success for 1 h" in row


def test_each_flow_has_a_row_and_fulfilment_counts_dispatches(client, ops_user, shop):
    now = timezone.now()
    Dispatch.objects.bulk_create([Dispatch(erp="erp", erp_dispatch_id=f"D{i}", storefront_status="pending")
                                  for i in range(150)])
    Dispatch.objects.create(erp="erp", erp_dispatch_id="S1", storefront_status="sent", sent_at=now)
    html = home(client, ops_user).content.decode()
    for flow in ("orders", "inventory", "fulfilment", "refunds", "payouts"):
        flow_row(html, flow)
    row = flow_row(html, "fulfilment")
    assert row.startswith("red|") and "now: backlog 150 &gt; 100" in row


def test_failing_patterns_group_exceptions_by_cause(client, ops_user, shop):
    since = timezone.now() - timedelta(hours=2)
    ExceptionRecord.objects.bulk_create([
        ExceptionRecord(type_code="unknown_sku", team="ops", key=f"unknown_sku:o{i}:TEE-RED-M",
                        fingerprint="unknown_sku:TEE-RED-M", title="SKU TEE-RED-M has no ERP item", message="m",
                        sku="TEE-RED-M", subject_type="order", subject_id=str(i),
                        first_seen=since + timedelta(minutes=i), last_seen=since + timedelta(minutes=i))
        for i in range(37)])
    ExceptionRecord.objects.create(type_code="erp_rejected", team="ops", key="erp_rejected:x", fingerprint="erp_rejected:x",
                                   title="The ERP rejected order #9", message="m", subject_type="order")
    html = home(client, ops_user).content.decode()
    patterns = html.split('id="patterns"', 1)[1].split("</ul>", 1)[0]
    local = timezone.localtime(since)
    when = f"{local:%H:%M}" if local.date() == timezone.localtime().date() else f"{local.day} {local:%b %H:%M}"
    assert f"37 orders failed on SKU TEE-RED-M since {when}" in patterns
    assert "fingerprint=unknown_sku%3ATEE-RED-M" in patterns
    assert "order #9" not in patterns  # a single error is not a pattern


def test_open_exceptions_are_counted_by_team_and_age(client, ops_user):
    now = timezone.now()
    for i, age in enumerate([timedelta(minutes=10), timedelta(hours=5), timedelta(days=3), timedelta(days=9)]):
        ExceptionRecord.objects.create(type_code="unknown_sku", team="finance", key=f"k{i}", fingerprint=f"f{i}",
                                       title="t", message="m", first_seen=now - age)
    html = home(client, ops_user).content.decode()
    row = re.search(r'<tr data-team="finance">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">(?:<a[^>]*>)?(\d+)', row) == ["1", "1", "1", "1", "0", "4"]


def test_the_chart_and_the_table_behind_it_hold_the_same_figures(client, ops_user, shop):
    plant_orders(shop, 3, state="posted", posted=timezone.now())
    html = home(client, ops_user).content.decode()
    data = json.loads(re.search(r'<script id="chart-throughput-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    orders = next(ds for ds in data["datasets"] if ds["label"].startswith("Orders"))
    assert orders["data"][-1] == 3 and len(data["labels"]) == 7
    table = html.split('id="chart-throughput-table"', 1)[1].split("</table>", 1)[0]
    today = timezone.localtime().strftime("%d %b")
    assert re.search(rf'<th scope="row">{today}</th><td class="num">3</td>', table)
    assert 'src="/static/vendor/chart-4.6.1.umd.min.js"' in html


def test_the_dashboard_refreshes_itself_as_a_fragment(client, ops_user):
    page = home(client, ops_user).content.decode()
    assert 'id="dashboard" hx-get="/" hx-trigger="every 10s" hx-swap="outerHTML"' in page
    fragment = home(client, ops_user, **{"HX-Request": "true"})
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="dashboard"') and "<html" not in body
    assert fragment["Cache-Control"] == "no-store" and "HX-Request" in fragment["Vary"]


def test_the_dashboard_keeps_the_overview_and_live_progress_sections(client, ops_user):
    html = home(client, ops_user).content.decode()
    assert "Go to the exception queue" in html and 'hx-get="/progress/"' in html


def test_its_queries_do_not_grow_with_the_data(shop):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            dashboard_compute()
        return len(ctx.captured_queries)

    plant_orders(shop, 5, state="posted", posted=timezone.now())
    few = queries()
    plant_orders(shop, 200, state="failed", start=100)
    assert queries() == few <= 25


def test_it_rejects_post(client, ops_user):
    client.force_login(ops_user)
    assert client.post("/").status_code == 405


def test_it_sends_a_stranger_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_figures_are_shared_for_30_seconds_then_refreshed_behind_the_viewer(client, ops_user, shop, settings,
                                                                              monkeypatch):
    settings.DASHBOARD_CACHE_SECONDS = 30

    class InlineThread:  # the refresher runs where the test can see it finish
        def __init__(self, target, args, **kwargs):
            self.run = lambda: target(*args)

        def start(self):
            self.run()

    monkeypatch.setattr("config.dashboard.threading.Thread", InlineThread)
    assert "0 / 0" in flow_row(home(client, ops_user).content.decode(), "orders")
    plant_orders(shop, 4, state="posted", posted=timezone.now())
    assert "0 / 0" in flow_row(home(client, ops_user).content.decode(), "orders")  # within 30 s: the same figures
    stamp, data = cache.get("ledgerline:dashboard:v2")
    cache.set("ledgerline:dashboard:v2", (stamp - 31, data), 600)
    # Past 30 s the viewer is answered at once with what there is while the next figures are computed...
    assert "0 / 0" in flow_row(home(client, ops_user).content.decode(), "orders")
    # ...and the next poll shows them.
    assert "4 / 4" in flow_row(home(client, ops_user).content.decode(), "orders")


def test_a_flow_with_nothing_yet_says_it_has_no_data_rather_than_green(client, ops_user):
    row = flow_row(home(client, ops_user).content.decode(), "refunds")
    assert row.startswith("idle|") and "No data" in row and "no data: nothing arrived in 7 days" in row
    assert "Green" not in row
