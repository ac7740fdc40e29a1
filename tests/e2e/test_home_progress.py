"""The home page in real Chromium during a flash sale: the live panel counts new orders by itself."""
from playwright.sync_api import expect

from tests.factories import InboundEventFactory, OrderLinkFactory


def test_the_home_page_counts_new_orders_without_a_reload(transactional_db, live_server, page, sign_in, ops_user,
                                                          shopify_connection):
    OrderLinkFactory(connection=shopify_connection, state="received")
    InboundEventFactory(connection=shopify_connection, status="pending")  # the sale is on: fast polling
    sign_in(ops_user)
    page.goto("/")
    received = page.locator("#progress .figure").filter(has_text="received").locator("strong")
    expect(received).to_have_text("1")
    expect(page.locator("#progress")).to_contain_text("live")

    for _ in range(2):
        OrderLinkFactory(connection=shopify_connection, state="received")
    expect(received).to_have_text("3", timeout=10000)
    assert page.url.endswith("/")  # same page, no navigation
