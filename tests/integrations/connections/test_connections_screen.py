"""The connections screen: admins only; add and edit with write-only secrets; deactivate with a
confirmation; Test connection says what works; the stored health line is shown without calling a
vendor; Check now and Repair; connecting a Shopify store by OAuth; backfill and re-sync from the screen."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from integrations.models import BackfillRun, Connection, ConnectionHealthCheck, OrderLink
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

SECRET = "erp-key-that-must-never-show-9f3a"


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def _add_erp(client, sandbox_url, **extra):
    data = {"kind": "rest_erp", "name": "Main ERP", "code": "main-erp", "base_url": f"{sandbox_url}/erp/api/v1",
            "secret_api_key": SECRET, **extra}
    return client.post(reverse("connection-add") + "?kind=rest_erp", data)


# --- access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["connections", "connection-add", "connection-shopify-connect"])
def test_only_admins_may_open_it(client, ops_user, name):
    client.force_login(ops_user)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "Only admins may manage connections." in response.content.decode()


def test_signed_out_it_asks_to_sign_in(client):
    response = client.get(reverse("connections"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_admins_see_it_in_the_navigation_and_others_do_not(client, admin_user, ops_user):
    client.force_login(ops_user)
    assert reverse("connections") not in client.get(reverse("orders")).content.decode()
    client.force_login(admin_user)
    assert f'href="{reverse("connections")}"' in client.get(reverse("orders")).content.decode()


def test_actions_refuse_get(admin, shopify_connection):
    for name in ("connection-test", "connection-check", "connection-repair", "connection-backfill"):
        assert admin.get(reverse(name, args=[shopify_connection.pk])).status_code == 405


# --- list and stored health ---------------------------------------------------------------------------


def test_the_list_shows_each_connection_with_its_stored_health_without_calling_a_vendor(admin, monkeypatch):
    shop = ConnectionFactory(code="uk-shop", kind="shopify", name="UK shop", base_url="https://uk.example.invalid",
                             settings={"api_version": "2026-04"})
    ConnectionHealthCheck.objects.create(connection=shop, status="warn", lines=[
        {"check": "scopes", "status": "warn", "message": "read_all_orders is missing", "repairable": False}])

    def no_calls(*args, **kwargs):
        raise AssertionError("the list called a vendor")

    monkeypatch.setattr(requests.Session, "request", no_calls)
    html = admin.get(reverse("connections")).content.decode()
    assert "UK shop" in html and "Shopify shop" in html and "uk-shop" in html and "2026-04" in html
    assert 'class="state health-warn"' in html and ">Warning<" in html
    detail = admin.get(reverse("connection-detail", args=[shop.pk])).content.decode()
    assert "read_all_orders is missing" in detail


def test_the_list_answers_an_htmx_swap_with_its_table_only(admin, shopify_connection):
    response = admin.get(reverse("connections"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="connections-table"' in html and "<h1" not in html
    assert "HX-Request" in response["Vary"]


# --- add and edit: write-only secrets -----------------------------------------------------------------


def test_a_secret_is_stored_encrypted_and_never_shown_again(admin, sandbox):
    response = _add_erp(admin, sandbox.url)
    connection = Connection.objects.get(code="main-erp")
    assert response.status_code == 302 and response["Location"] == reverse("connection-detail", args=[connection.pk])
    assert connection.secret("api_key") == SECRET
    raw = Connection.objects.filter(pk=connection.pk).values_list("credentials", flat=True).get()
    assert SECRET not in raw  # a Fernet token in the database
    for url in (reverse("connection-detail", args=[connection.pk]), reverse("connection-edit", args=[connection.pk]),
                reverse("connections")):
        html = admin.get(url).content.decode()
        assert SECRET not in html
    assert "set — leave blank to keep it" in admin.get(reverse("connection-edit", args=[connection.pk])).content.decode()


def test_a_failed_save_does_not_echo_the_secret(admin, sandbox):
    ConnectionFactory(code="main-erp", kind="rest_erp")
    response = _add_erp(admin, sandbox.url)  # the code is taken
    html = response.content.decode()
    assert response.status_code == 400
    assert "Connection with this Code already exists." in html
    assert SECRET not in html


def test_editing_with_a_blank_secret_keeps_it_and_history_names_only_what_was_replaced(admin, sandbox, admin_user):
    _add_erp(admin, sandbox.url)
    connection = Connection.objects.get(code="main-erp")
    url = reverse("connection-edit", args=[connection.pk])
    admin.post(url, {"name": "ERP (renamed)", "code": "main-erp", "base_url": connection.base_url, "secret_api_key": ""})
    connection.refresh_from_db()
    assert connection.name == "ERP (renamed)" and connection.secret("api_key") == SECRET
    admin.post(url, {"name": "ERP (renamed)", "code": "main-erp", "base_url": connection.base_url,
                     "secret_api_key": "a-newer-key-0000"})
    connection.refresh_from_db()
    assert connection.secret("api_key") == "a-newer-key-0000"
    versions = list(connection.history.all())
    assert [v.history_change_reason for v in versions] == ["secrets replaced: api_key", None, "secrets replaced: api_key"]
    assert all(v.history_user == admin_user for v in versions)
    html = admin.get(reverse("connection-detail", args=[connection.pk])).content.decode()
    assert "name: &#x27;Main ERP&#x27; → &#x27;ERP (renamed)&#x27;" in html and "ada-admin" in html
    assert SECRET not in html and "a-newer-key-0000" not in html


def test_an_unknown_kind_is_a_400(admin):
    assert admin.get(reverse("connection-add") + "?kind=ftp").status_code == 400


# --- deactivate -----------------------------------------------------------------------------------------


def test_deactivating_asks_first_then_the_connection_accepts_nothing(admin, shopify_connection):
    url = reverse("connection-active", args=[shopify_connection.pk])
    confirm = admin.get(url).content.decode()
    assert "accepts and posts nothing" in confirm and 'method="post"' in confirm
    shopify_connection.refresh_from_db()
    assert shopify_connection.active
    admin.post(url)
    shopify_connection.refresh_from_db()
    assert not shopify_connection.active
    assert shopify_connection.history.first().history_change_reason == "deactivated"
    webhook = admin.post(reverse("webhook-shopify", args=[shopify_connection.code]), data=b"{}",
                         content_type="application/json")
    assert webhook.status_code in (401, 404)
    admin.post(url)
    shopify_connection.refresh_from_db()
    assert shopify_connection.active


# --- test connection, check now, repair -----------------------------------------------------------------


def test_test_connection_with_a_wrong_key_says_the_erp_refused_it(admin, sandbox):
    _add_erp(admin, sandbox.url, secret_api_key="wrong-key")
    connection = Connection.objects.get(code="main-erp")
    response = admin.post(reverse("connection-test", args=[connection.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="test-section"' in html and "<h1" not in html
    assert "Does not work" in html and "ERROR</strong> · auth: The ERP refused the request" in html


def test_test_connection_with_the_right_key_says_what_worked(admin, sandbox, settings):
    _add_erp(admin, sandbox.url, secret_api_key=settings.ERP["api_key"])
    connection = Connection.objects.get(code="main-erp")
    html = admin.post(reverse("connection-test", args=[connection.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Works" in html and "OK</strong> · auth: Authenticated call works" in html


def test_check_now_stores_the_health_and_repair_fixes_a_missing_subscription(admin, sandbox, settings):
    from integrations.onboarding.shopify_oauth import shopify_connect_client_credentials

    settings.SITE_URL = "http://localhost:8000"
    shop = shopify_connect_client_credentials(shop=f"{sandbox.url}/shopify", code="demo-shop").connection
    admin.post(reverse("connection-repair", args=[shop.pk]))
    # Someone deletes one subscription in the shop: its orders would no longer reach Ledgerline.
    [number] = [n for n, s in sandbox.shopify.subscriptions.items() if s["topic"] == "ORDERS_CREATE"]
    del sandbox.shopify.subscriptions[number]
    html = admin.post(reverse("connection-check", args=[shop.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Webhook subscription orders/create is missing" in html and "Repair webhook subscriptions" in html
    assert ConnectionHealthCheck.objects.get(connection=shop).status == "error"

    response = admin.post(reverse("connection-repair", args=[shop.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response["HX-Trigger"] == "connectionsChanged"
    assert "Repaired: created orders/create. </p>" not in html and "Repaired: created orders/create." in html
    assert "webhook subscriptions in order" in html and "is missing: its events" not in html
    topics = {s["topic"] for s in sandbox.shopify.subscriptions.values()}
    assert "ORDERS_CREATE" in topics


# --- connecting a Shopify store by OAuth -------------------------------------------------------------------


def _authorize(admin, shop_url):
    response = admin.post(reverse("connection-shopify-connect"), {"shop": shop_url, "name": "EU store"})
    assert response.status_code == 302
    answer = requests.get(response["Location"], allow_redirects=False, timeout=5)  # the shop approves at once
    return urlsplit(answer.headers["Location"])


def test_connecting_a_shopify_store_by_oauth_lists_it_and_offers_a_backfill(admin, sandbox, settings):
    settings.SITE_URL = "http://localhost:8000"
    callback = _authorize(admin, f"{sandbox.url}/shopify-eu")
    assert callback.path == reverse("connection-shopify-callback")
    response = admin.get(f"{callback.path}?{callback.query}")
    html = response.content.decode()
    assert response.status_code == 200 and "EU store is connected" in html and "Import orders" in html
    connection = Connection.objects.get(kind="shopify", settings__shop_domain="ledgerline-eu.myshopify.com")
    assert connection.secret("access_token").startswith("shpat_")
    assert connection.secret("access_token") not in html
    assert "EU store" in admin.get(reverse("connections")).content.decode()


def test_a_callback_with_a_forged_hmac_is_refused_with_a_message(admin, sandbox):
    callback = _authorize(admin, f"{sandbox.url}/shopify-eu")
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["hmac"] = "0" * 64
    response = admin.get(callback.path, params)
    assert response.status_code == 400
    assert "its hmac signature does not match" in response.content.decode()
    assert not Connection.objects.filter(kind="shopify").exists()


def test_a_shop_that_is_not_a_shop_is_refused(admin):
    response = admin.post(reverse("connection-shopify-connect"), {"shop": "not a shop!"})
    assert response.status_code == 400 and "is not a Shopify shop" in response.content.decode()


# --- backfill and re-sync from the screens ----------------------------------------------------------------


def test_a_backfill_started_on_the_screen_shows_its_progress(admin, order_setup, shopify_connection,
                                                             django_capture_on_commit_callbacks, monkeypatch):
    from integrations.flows.backfill import runs

    monkeypatch.setattr(runs, "POLL_INTERVAL", 0)
    order_setup.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("connection-backfill", args=[shopify_connection.pk]), {"since": "2026-01-01"})
    run = BackfillRun.objects.get()
    assert response["Location"] == reverse("connection-backfill-run", args=[run.pk])
    html = admin.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'id="run-progress"' in html and "Completed" in html
    assert '<dd data-count="stored">1</dd>' in html and '<dd data-count="posted">1</dd>' in html
    assert 'hx-trigger="every 2s"' not in html  # done: no more polling


def test_a_backfill_date_in_the_future_is_refused(admin, shopify_connection):
    response = admin.post(reverse("connection-backfill", args=[shopify_connection.pk]), {"since": "2999-01-01"})
    assert response.status_code == 400 and "Choose a day on or before today." in response.content.decode()
    assert not BackfillRun.objects.exists()


def test_an_order_is_imported_by_number_from_the_connection_page(admin, order_setup, shopify_connection,
                                                                 django_capture_on_commit_callbacks):
    order = order_setup.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}], financial_status="paid")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("connection-import-order", args=[shopify_connection.pk]),
                              {"number": order["name"]})
    # Stored in the inbox; the orders list (filtered to it) shows it once the flow has applied it.
    number = order["name"].lstrip("#")
    assert response["Location"] == f"{reverse('orders')}?q={number}&connection={shopify_connection.pk}"
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    assert link.state == OrderLink.State.POSTED
    assert order["name"] in admin.get(response["Location"]).content.decode()


def test_resync_on_the_order_page_is_for_ops_ecommerce_and_admins(client, order_setup, shopify_connection,
                                                                 ops_user, finance_user,
                                                                 django_capture_on_commit_callbacks):
    from integrations.flows.backfill import order_import_by_number

    order = order_setup.shopify.create_order(line_items=[{"sku": "MUG-001", "quantity": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        order_import_by_number(connection=shopify_connection, number=order["name"])
    link = OrderLink.objects.get()
    client.force_login(finance_user)
    assert "Re-sync from" not in client.get(reverse("order-detail", args=[link.pk])).content.decode()
    assert client.post(reverse("order-resync", args=[link.pk])).status_code == 403
    client.force_login(ops_user)
    assert "Re-sync from Shopify store" in client.get(reverse("order-detail", args=[link.pk])).content.decode()
    order_setup.shopify.mark_paid(order["id"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("order-resync", args=[link.pk]))
    assert response["Location"] == reverse("order-detail", args=[link.pk])
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    html = client.get(response["Location"]).content.decode()
    assert "read again from Shopify store" in html and "Re-synced from the storefront" in html
