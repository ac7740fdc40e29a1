"""In real Chromium: an admin connects a second Shopify shop through OAuth (the sandbox's EU shop
approves at once and sends the browser back), sees it listed, repairs its webhook subscriptions so its
health line goes green, and Back from the connection page returns to the styled list."""
import re

import pytest
from playwright.sync_api import expect

from integrations.models import Connection


@pytest.fixture
def shops(transactional_db, sandbox, shopify_connection, live_server, settings):
    settings.SITE_URL = live_server.url  # where the shop's webhook subscriptions must point
    return sandbox


def test_an_admin_connects_a_second_shop_by_oauth_and_its_health_goes_green(page, sign_in, shops, admin_user):
    sign_in(admin_user)
    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    page.get_by_role("link", name="Connect a Shopify store").click()
    page.get_by_label("Shop domain").fill(f"{shops.url}/shopify-eu")
    page.get_by_label("Name").fill("EU store")
    page.get_by_role("button", name="Connect").click()

    # Shopify's authorize page approved and sent the browser back to the callback.
    expect(page.get_by_role("heading", name="EU store is connected")).to_be_visible()
    expect(page.get_by_text("Webhook subscription orders/create is missing")).to_be_visible()
    connection = Connection.objects.get(settings__shop_domain="ledgerline-eu.myshopify.com")
    assert connection.secret("access_token") not in page.content()

    page.get_by_role("link", name="Open the connection").click()
    page.get_by_role("button", name="Repair webhook subscriptions").click()
    health = page.locator("#health-section")
    expect(health.get_by_text(re.compile(r"^Repaired: created app/uninstalled"))).to_be_visible()
    expect(health.locator(".state")).to_have_text("Healthy")
    page.get_by_role("button", name="Check now").click()
    expect(health.locator(".state")).to_have_text("Healthy")

    page.get_by_role("link", name="← Connections").click()
    row = page.get_by_role("row").filter(has_text="EU store")
    expect(row.get_by_text("Healthy")).to_be_visible()
    row.get_by_role("link", name="EU store").click()
    expect(page.get_by_role("heading", name=re.compile("^EU store"))).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    expect(page.locator(".topbar")).to_be_visible()  # the whole styled page, not a fragment
    assert page.evaluate("getComputedStyle(document.querySelector('table.grid')).borderCollapse") == "collapse"
