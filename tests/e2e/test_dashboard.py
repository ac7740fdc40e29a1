"""The health dashboard in real Chromium (Debian's), at a desktop's 1280 px and a phone's 390 px: each
chart is drawn with its data points, the table behind it holds the same numbers, the flows show their
colour and rule, and nothing scrolls sideways."""
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_queue.models import ExceptionRecord
from integrations.models import DriftRun, OrderLink


@pytest.fixture
def busy_day(transactional_db, shopify_connection):
    cache.clear()
    now = timezone.now()
    OrderLink.objects.bulk_create(
        [OrderLink(connection=shopify_connection, storefront_order_id=f"p{i}", state="posted", created_at=now,
                   posted_at=now) for i in range(7)]
        + [OrderLink(connection=shopify_connection, storefront_order_id=f"y{i}", state="posted",
                     created_at=now - timedelta(days=1), posted_at=now - timedelta(days=1)) for i in range(4)]
        + [OrderLink(connection=shopify_connection, storefront_order_id=f"f{i}", state="failed", created_at=now)
           for i in range(2)])
    ExceptionRecord.objects.bulk_create([
        ExceptionRecord(type_code="unknown_sku", team="ops", key=f"unknown_sku:{i}:TEE-RED-M",
                        fingerprint="unknown_sku:TEE-RED-M", title="SKU TEE-RED-M has no ERP item", message="m",
                        sku="TEE-RED-M", subject_type="order", first_seen=now - timedelta(hours=3))
        for i in range(5)])
    DriftRun.objects.create(check_code="orphaned_orders", status="findings", started_at=now, finished_at=now,
                            found=3, raised=3)
    yield
    cache.clear()


def _chart_points(page, chart_id: str) -> list[list[float]]:
    return page.evaluate(
        "id => Chart.getChart(document.getElementById(id)).data.datasets.map(ds => ds.data)", chart_id)


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_charts_render_with_their_data_and_the_tables_hold_the_numbers(busy_day, browser, live_server, ops_user,
                                                                            width, height):
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", ops_user.username)
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login" not in url)
        page.goto("/")
        for chart in ("chart-throughput", "chart-ages", "chart-drift"):
            page.wait_for_function("id => window.Chart && Chart.getChart(document.getElementById(id))", arg=chart)
            box = page.locator(f"#{chart}").bounding_box()
            assert box["width"] > 200 and box["height"] > 150, (chart, box)
        throughput = _chart_points(page, "chart-throughput")
        assert throughput[0][-2:] == [4, 7]  # orders posted yesterday and today
        ages = _chart_points(page, "chart-ages")
        assert ages[0][1] == 5  # ops: five exceptions between 1 and 24 hours old
        assert _chart_points(page, "chart-drift")[0][-1] == 3

        page.get_by_text("Work done per day, last 7 days: the figures").click()
        today = timezone.localtime().strftime("%d %b")
        cells = page.locator("#chart-throughput-table tr", has_text=today).locator("td")
        expect(cells.first).to_have_text("7")

        orders = page.locator('#flow-table tr[data-flow="orders"]')
        expect(orders).to_have_attribute("data-colour", "red")
        expect(orders).to_contain_text("red: backlog > 100 or error rate > 5 % over 24 h")
        expect(page.locator("#patterns")).to_contain_text("5 orders failed on SKU TEE-RED-M")
        assert page.evaluate("document.documentElement.scrollWidth") <= width

        # The dashboard refreshes itself; the table someone opened stays open and the chart is redrawn.
        with page.expect_response(lambda r: r.url.rstrip("/") == live_server.url and
                                  r.request.headers.get("hx-request") == "true", timeout=15000):
            pass
        page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('chart-throughput'))")
        expect(page.locator("#chart-throughput-details")).to_have_attribute("open", "")
    finally:
        context.close()
