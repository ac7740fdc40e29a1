"""The price comparison screen and "Restore ERP price": ERP master prices beside each storefront's, from
the last prices check (the sandboxes over real HTTP); a restore sets the variant back through the
storefront connector, logs the write, notes it on the exception and re-checks that SKU so the
exception resolves; who may do it; what an unsupported storefront answers."""
import html

import pytest
from django.test import Client
from django.urls import reverse

from exceptions_queue.models import ExceptionRecord
from integrations.connectors.catalogue import PUBLISH_PRODUCTS
from integrations.drift import price_comparison, price_restore
from integrations.drift.registry import check_run
from integrations.models import DriftFinding, OutboundWrite
from tests.integrations.connectors.test_shopify_graphql_documents import VERSIONS, problems

pytestmark = pytest.mark.django_db

PRICES = reverse("catalogue-prices")
RESTORE = reverse("catalogue-price-restore")


@pytest.fixture(autouse=True)
def _fresh_caches():
    price_comparison._erp_read.clear()
    price_comparison._currencies.clear()
    yield
    price_comparison._erp_read.clear()
    price_comparison._currencies.clear()


def _cents(amount, currency="EUR", **extra):
    return {"value": {"type": "centPrecision", "currencyCode": currency, "centAmount": amount, "fractionDigits": 2},
            **extra}


@pytest.fixture
def shop_drift(sandbox, shopify_connection):
    """A Shopify shop (GBP) where MUG-1 sells at 8.50 against the ERP's 9.50; TEE-1 agrees."""
    sandbox.shopify.reset(seed=False)
    sandbox.erp.add_item("TEE-1", prices=[{"currency": "GBP", "amount": "19.99", "type": "list"},
                                          {"currency": "GBP", "amount": "20.00", "type": "list", "customer_group": "vip"}])
    sandbox.erp.add_item("MUG-1", prices=[{"currency": "GBP", "amount": "9.50", "type": "list"}])
    sandbox.shopify.add_product("Tee", [{"sku": "TEE-1", "price": "19.99"}])
    sandbox.shopify.add_product("Mug", [{"sku": "MUG-1", "price": "8.50"}])
    run = check_run("prices")
    assert run.found == 1, run.error
    return sandbox


@pytest.fixture
def ct_drift(sandbox, ct_connection):
    """A commercetools project where TEE-1's EUR price is 21.00 against the ERP's 22.99."""
    ct = sandbox.commercetools
    sandbox.erp.add_item("TEE-1", prices=[{"currency": "EUR", "amount": "22.99", "type": "list"}])
    product = ct.add_product("Tee", ["TEE-1"])
    ct.products[product["id"]]["masterVariant"]["prices"] = [_cents(2100)]
    run = check_run("prices")
    assert run.found == 1, run.error
    return sandbox


def _group(body: str, sku: str) -> str:
    """The rows (one <tbody>) of one SKU on one storefront."""
    at = body.index(f"<strong>{sku}</strong>")
    start = body.rindex("<tbody", 0, at)
    return body[start:body.index("</tbody>", at)]


def _groups_html(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return html.unescape(response.content.decode())


def test_it_shows_each_erp_price_beside_the_storefront_with_the_difference_highlighted(client, ecommerce_user,
                                                                                        shop_drift):
    client.force_login(ecommerce_user)
    body = _groups_html(client.get(PRICES))
    assert body.count("<h1") == 1 and 'class="table-wrap"' in body
    mug = _group(body, "MUG-1")
    assert 'class="diff"' in mug and "9.50" in mug and "8.50" in mug and "Differs" in mug
    assert "Restore ERP price" in mug
    tee = _group(body, "TEE-1")
    assert "No gap at the last check" in tee and "Restore ERP price" not in tee
    # the customer-group price is not a Shopify variant price: shown, not compared
    assert "group vip" in tee and "Not compared" in tee
    assert "the variant's price is the ERP list price in GBP" in body  # the rule
    assert "Last prices check: gaps found" in body and "Run the check now" in body


def test_it_filters_by_storefront_sku_and_only_differences(client, ecommerce_user, shop_drift, ct_connection):
    client.force_login(ecommerce_user)
    only = _groups_html(client.get(PRICES, {"only": "1"}))
    assert "<strong>MUG-1</strong>" in only and "<strong>TEE-1</strong>" not in only
    found = _groups_html(client.get(PRICES, {"q": "tee"}))
    assert "<strong>TEE-1</strong>" in found and "<strong>MUG-1</strong>" not in found
    shop_only = _groups_html(client.get(PRICES, {"connection": "shopify"}))
    assert "commercetools shop</td>" not in shop_only and "Shopify store</td>" in shop_only
    none = _groups_html(client.get(PRICES, {"only": "1", "q": "tee"}))
    assert "No price differs from the ERP for “tee” at the last check." in none


def test_it_pages_the_catalogue(client, ecommerce_user, sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    for n in range(30):
        sandbox.erp.add_item(f"SKU-{n:02}", prices=[{"currency": "GBP", "amount": "1.00", "type": "list"}])
    client.force_login(ecommerce_user)
    first = _groups_html(client.get(PRICES))
    assert "Page 1 of 2 · 30 items" in first and "<strong>SKU-24</strong>" in first and "SKU-25" not in first
    second = _groups_html(client.get(PRICES, {"page": 2}))
    assert "<strong>SKU-29</strong>" in second and "SKU-00" not in second
    assert "Not checked yet" in second  # no check has run


def test_an_htmx_filter_gets_the_table_fragment_only(client, ecommerce_user, shop_drift):
    client.force_login(ecommerce_user)
    response = client.get(PRICES, {"only": "1"}, HTTP_HX_REQUEST="true")
    body = _groups_html(response)
    assert 'id="price-table"' in body and "<h1" not in body and "MUG-1" in body
    assert "HX-Request" in response["Vary"]


def test_restore_sets_the_commercetools_variant_back_and_resolves_the_exception(client, ecommerce_user, ct_drift):
    exception = ExceptionRecord.objects.get(type_code="drift_price_mismatch", status="open")
    client.force_login(ecommerce_user)
    response = client.post(RESTORE, {"connection": "commercetools", "sku": "TEE-1"}, HTTP_HX_REQUEST="true")
    body = _groups_html(response)
    assert "Restored the ERP price of TEE-1 on commercetools shop: 22.99 EUR. 1 price exception resolved." in body
    assert 'class="diff"' not in body and "No gap at the last check" in body and "<h1" not in body
    assert "catalogueChanged" in response["HX-Trigger"]
    # the storefront sells at the ERP's price again, and the check agrees
    [product] = sandbox_products(ct_drift)
    assert [p["value"]["centAmount"] for p in product["masterVariant"]["prices"]] == [2299]
    exception.refresh_from_db()
    assert exception.status == "resolved"
    assert not DriftFinding.objects.filter(check_code="prices", resolved_at__isnull=True).exists()
    write = OutboundWrite.objects.get(action="restore_erp_price")
    assert (write.status, write.subject_id, write.connection.code) == ("succeeded", "TEE-1", "commercetools")
    assert write.external_reference.startswith("restore-price:commercetools:TEE-1:")
    line = exception.activity.get(action="erp_price_restored")
    assert line.actor == ecommerce_user and "22.99 EUR" in line.note
    assert check_run("prices").found == 0


def sandbox_products(sandbox):
    return [p for p in sandbox.commercetools.products.values() if p["masterVariant"].get("sku") == "TEE-1"]


def test_restore_from_the_exception_page_sets_the_shopify_variant_and_redirects_back_resolved(client, ecommerce_user,
                                                                                               shop_drift):
    exception = ExceptionRecord.objects.get(type_code="drift_price_mismatch", status="open")
    client.force_login(ecommerce_user)
    page = client.get(reverse("exception-detail", args=[exception.pk])).content.decode()
    assert "Restore ERP price" in page and f'name="exception" value="{exception.pk}"' in page

    response = client.post(RESTORE, {"exception": exception.pk})
    assert response.status_code == 302 and response["Location"] == reverse("exception-detail", args=[exception.pk])
    assert shop_drift.shopify.variant_by_sku("MUG-1")["price"] == "9.50"  # over HTTP to the sandbox shop
    assert shop_drift.shopify.variant_by_sku("TEE-1")["price"] == "19.99"
    exception.refresh_from_db()
    assert exception.status == "resolved"
    after = html.unescape(client.get(response["Location"]).content.decode())
    assert "Restored the ERP price of MUG-1 on Shopify store: 9.50 GBP" in after
    assert "Restore ERP price</button>" not in after


def test_an_unsupported_storefront_gets_a_clear_message_not_an_error(client, ecommerce_user, shop_drift, monkeypatch):
    class NoPublishing:
        capabilities = frozenset()

    monkeypatch.setattr("integrations.connectors.connector_for", lambda connection: NoPublishing())
    client.force_login(ecommerce_user)
    body = _groups_html(client.post(RESTORE, {"connection": "shopify", "sku": "MUG-1"}, HTTP_HX_REQUEST="true"))
    assert "Ledgerline cannot set prices on Shopify store yet" in body and 'class="diff"' in body
    assert not OutboundWrite.objects.filter(action="restore_erp_price").exists()
    assert ExceptionRecord.objects.get(type_code="drift_price_mismatch").status == "open"


def test_a_storefront_refusal_is_shown_and_the_write_is_logged_as_failed(client, ecommerce_user, shop_drift,
                                                                         monkeypatch):
    from integrations.connectors.base import PermanentError

    class Refusing:
        capabilities = frozenset({PUBLISH_PRODUCTS})

        def set_variant_prices(self, sku, prices):
            raise PermanentError("Price must be greater than or equal to 0", code="INVALID")

    monkeypatch.setattr("integrations.connectors.connector_for", lambda connection: Refusing())
    client.force_login(ecommerce_user)
    body = _groups_html(client.post(RESTORE, {"connection": "shopify", "sku": "MUG-1"}, HTTP_HX_REQUEST="true"))
    assert "Shopify store refused the prices of MUG-1: Price must be greater than or equal to 0" in body
    write = OutboundWrite.objects.get(action="restore_erp_price")
    assert write.status == "failed" and "greater than" in write.error


def test_a_second_click_while_the_first_restore_is_in_flight_is_refused(ecommerce_user, shop_drift, shopify_connection,
                                                                        monkeypatch):
    sent = []

    class Shop:
        capabilities = frozenset({PUBLISH_PRODUCTS})

        def set_variant_prices(self, sku, prices):
            sent.append(sku)
            with pytest.raises(price_restore.RestoreRefused, match="already being restored"):
                price_restore.price_restore(connection=shopify_connection, sku="MUG-1", user=ecommerce_user)

    monkeypatch.setattr("integrations.connectors.connector_for", lambda connection: Shop())
    monkeypatch.setattr(price_restore, "prices_recheck_sku", lambda **kw: (0, []))
    price_restore.price_restore(connection=shopify_connection, sku="MUG-1", user=ecommerce_user)
    assert sent == ["MUG-1"]


def test_only_ecommerce_or_admin_may_see_or_restore(client, ops_user, admin_user, shop_drift):
    client.force_login(ops_user)
    assert client.get(PRICES).status_code == 403
    assert client.post(RESTORE, {"connection": "shopify", "sku": "MUG-1"}).status_code == 403
    client.force_login(admin_user)
    assert client.get(PRICES).status_code == 200


def test_it_asks_a_signed_out_visitor_to_sign_in(client, shop_drift):
    response = client.get(PRICES)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_restore_refuses_get_and_a_post_without_the_csrf_token(ecommerce_user, shop_drift):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ecommerce_user)
    assert strict.get(RESTORE).status_code == 405
    assert strict.post(RESTORE, {"connection": "shopify", "sku": "MUG-1"}).status_code == 403
    assert ExceptionRecord.objects.get(type_code="drift_price_mismatch").status == "open"


def test_run_now_queues_the_prices_check(client, ecommerce_user, shop_drift, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: queued.append(args))
    client.force_login(ecommerce_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("catalogue-price-check-run"), HTTP_HX_REQUEST="true")
    assert "The prices check is queued" in response.content.decode()
    assert queued == [("integrations.drift.tasks.drift_check_task", "prices", ecommerce_user.pk)]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_one_sku_price_query_is_valid_on_the_published_schema(version):
    assert problems(version, price_restore.SHOPIFY_SKU_PRICES, {"query": 'sku:"MUG-1"'}) == []


def test_it_reads_the_stored_item_master_and_says_which_items_are_not_live(client, ecommerce_user, shop_drift,
                                                                          shopify_connection):
    from integrations.models.catalogue import CatalogItem, CatalogPublication
    from tests.factories import ConnectionFactory

    erp = ConnectionFactory(code="erp", kind="rest_erp", name="REST ERP")
    for code, name, amount in (("MUG-1", "Enamel mug", "9.50"), ("CAP-1", "Cap", "12.00")):
        item = CatalogItem.objects.create(erp_connection=erp, item_id=f"i-{code}", code=code, name=name,
                                          data={"prices": [{"currency": "GBP", "amount": amount, "type": "list"}]})
        state = "live" if code == "MUG-1" else "waiting"
        CatalogPublication.objects.create(item=item, connection=shopify_connection, state=state, sku=code,
                                          missing=[] if state == "live" else ["lead time"])
    client.force_login(ecommerce_user)
    body = _groups_html(client.get(PRICES))
    assert "TEE-1" not in body  # the ERP's live list is not read once the item master is stored
    assert "Enamel mug" in body and "Differs" in _group(body, "MUG-1")
    assert "not live on this storefront: waiting for data (waits for lead time)" in _group(body, "CAP-1")
