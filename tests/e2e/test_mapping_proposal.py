"""In real Chromium: ops propose the mapping an unknown-SKU exception needs, an admin approves it in
one click and the exception resolves; "Retry them" on a mapping follows each exception's retry
without a page load; the mapping screens fit a 390 px wide phone."""
import pytest
from django.test import Client
from playwright.sync_api import expect

from exceptions_queue import registry
from exceptions_queue.models import BulkJob, ExceptionRecord
from exceptions_queue.registry import ExceptionType
from exceptions_queue.services import bulk_job_run
from integrations.flows.orders import erp_caches_clear
from integrations.models import OrderLink
from mappings.models import MappingProposal, SkuMapping
from tests.factories import (
    DepotMappingFactory, ExceptionRecordFactory, OrderLinkFactory, SkuMappingFactory, TaxCodeMappingFactory,
    UserFactory,
)
from tests.payloads import post_shopify_webhook, shopify_order


@pytest.fixture
def q_sync(settings, monkeypatch):
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 reads the setting once, at import


def signed_in_page(browser, live_server, user, **context_options):
    context = browser.new_context(base_url=live_server.url, **context_options)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    return context, page


def test_ops_proposes_a_mapping_and_an_admin_approves_it_in_one_click(
    transactional_db, q_sync, sandbox, browser, live_server, page, sign_in, admin_user, shopify_connection,
):
    erp_caches_clear()
    for code in ("TEE-BLK-M", "SHIPPING", "CUSTOM", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0", country="GB", erp_tax_code="T0")
    payload = shopify_order(order_id=5_570_001, number=2201, lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}])
    assert post_shopify_webhook(Client(), payload).status_code == 200
    record = ExceptionRecord.objects.get(type_code="unknown_sku", status="open")
    olivia = UserFactory(username="olivia-ops", roles=["ops"])

    # ops: from the exception, a prefilled proposal
    sign_in(olivia)
    page.goto(f"/exceptions/{record.pk}/")
    page.get_by_role("link", name="Propose a mapping").click()
    expect(page.locator("h1")).to_have_text("Propose a SKU mapping")
    expect(page.locator("input[name=storefront_sku]")).to_have_value("TEE-RED-M")
    expect(page.locator("select[name=connection]")).to_have_value("shopify")
    page.get_by_label("ERP item").fill("TEE-BLK-M")
    page.get_by_label("Why (for the admin)").fill("Same item, red print")
    page.get_by_role("button", name="Propose").click()
    page.wait_for_url(f"**/exceptions/{record.pk}/")
    expect(page.locator(".messages")).to_contain_text("Proposed the SKU mapping shopify · TEE-RED-M")
    expect(page.get_by_test_id("mapping-offer")).to_contain_text("waiting for an admin")
    assert not SkuMapping.objects.exists()

    # admin: the Proposals tab counts it; one click approves it
    admin_context, admin_page = signed_in_page(browser, live_server, admin_user)
    admin_page.goto("/mappings/")
    tab = admin_page.get_by_role("navigation", name="Mapping tables").get_by_role("link", name="Proposals")
    expect(tab.locator(".badge")).to_have_text("1")
    tab.click()
    row = admin_page.locator(f"#proposal-{MappingProposal.objects.get().pk}")
    expect(row).to_contain_text("olivia-ops")
    expect(row.locator("dt:text-is('ERP item') + dd")).to_have_text("TEE-BLK-M")
    expect(row).to_contain_text("Same item, red print")
    row.get_by_role("button", name="Approve").click()
    expect(admin_page.locator(".messages")).to_contain_text("Approved: the SKU mapping shopify · TEE-RED-M is added.")
    expect(admin_page.locator(".affected")).to_contain_text("Retry finished: 1 resolved")
    expect(admin_page.locator(f'.affected li[data-exception="{record.pk}"]')).to_contain_text("resolved")
    expect(admin_page.locator("table.history")).to_contain_text(f"Proposal #{MappingProposal.objects.get().pk} by olivia-ops, approved")
    admin_context.close()

    assert SkuMapping.objects.get().erp_item_code == "TEE-BLK-M"
    assert OrderLink.objects.get().state == OrderLink.State.POSTED

    # ops: the exception resolved, and its timeline says who proposed and who approved
    page.reload()
    expect(page.locator("#exception-status")).to_have_text("Resolved")
    timeline = page.locator("#exception-timeline")
    expect(timeline).to_contain_text("olivia-ops · commented: Proposed a mapping")
    expect(timeline).to_contain_text("ada-admin · commented: Approved the proposed mapping")
    erp_caches_clear()


def fixed_when_told(record) -> bool:
    if not record.context.get("fixable"):
        ExceptionRecord.objects.filter(pk=record.pk).update(last_error="ERP item 10042 is blocked for sale")
        return False
    return True


RETRY_TYPE = ExceptionType(
    code="e2e_mapping_retry", team="ops", severity="high", title="{title}", runbook="test only",
    retry_handler="tests.e2e.test_mapping_proposal.fixed_when_told",
)


@pytest.fixture
def retry_type():
    registry.register(RETRY_TYPE)
    yield RETRY_TYPE
    registry.unregister(RETRY_TYPE.code)


def test_retry_them_updates_each_affected_exception_on_the_page(
    transactional_db, retry_type, page, sign_in, admin_user, shopify_connection,
):
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    fixed = ExceptionRecordFactory(type_code=retry_type.code, team="ops", sku="TEE-RED-M",
                                   title="Order #3001 waits for TEE-RED-M", context={"fixable": True})
    still = ExceptionRecordFactory(type_code=retry_type.code, team="ops", sku="TEE-RED-M",
                                   title="Order #3002 waits for TEE-RED-M", context={"fixable": False})

    sign_in(admin_user)
    page.goto(f"/mappings/skus/{row.pk}/")
    affected = page.locator(".affected")
    expect(affected).to_contain_text("2 open exceptions affected by this row.")
    page.evaluate("window.__marker = 'same page'")
    affected.get_by_role("button", name="Retry them").click()

    # queued (no worker yet): each one says it is being retried, and the fragment polls
    expect(page.locator(".affected li[data-state=retrying]")).to_have_count(2)
    expect(page.locator(".affected")).to_have_attribute("hx-trigger", "every 2s")
    bulk_job_run(job_id=BulkJob.objects.get().pk)  # the django-q2 worker's part

    expect(page.locator(f'.affected li[data-exception="{fixed.pk}"]')).to_contain_text("resolved", timeout=10000)
    failing = page.locator(f'.affected li[data-exception="{still.pk}"]')
    expect(failing).to_contain_text("still failing")
    expect(failing).to_contain_text("ERP item 10042 is blocked for sale")
    expect(page.locator(".retry-summary")).to_contain_text("Retry finished: 1 resolved, 1 still failing")
    expect(page.locator(".affected")).not_to_have_attribute("hx-trigger", "every 2s")  # it stopped polling
    expect(page.locator(".affected")).to_contain_text("1 open exception affected by this row.")
    assert page.evaluate("window.__marker") == "same page"


def test_mapping_screens_fit_a_390px_wide_phone(transactional_db, sandbox, browser, live_server, admin_user,
                                                ops_user, shopify_connection):
    sandbox.erp.add_item("TEE-BLK-M")
    row = SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M-EXTRA-LONG-SKU-NAME-2026",
                            erp_item_code="TEE-BLK-M", note="A long note that a narrow table must not push out")
    order = OrderLinkFactory(connection=shopify_connection)
    record = ExceptionRecordFactory(type_code="unknown_sku", team="ops", order=order, sku="TEE-GRN-M")
    MappingProposal.objects.create(
        table="skus", key="shopify · TEE-GRN-M", exception=record, proposed_by=ops_user,
        values={"connection": "shopify", "storefront_sku": "TEE-GRN-M", "erp_item_code": "TEE-BLK-M", "active": True},
        comment="Green is sold as black until the item exists",
    )
    phone = {"viewport": {"width": 390, "height": 844}}
    pages = {
        admin_user: ["/mappings/", "/mappings/skus/", f"/mappings/skus/{row.pk}/", "/mappings/skus/add/",
                     "/mappings/locations/", "/mappings/proposals/", "/mappings/health/"],
        ops_user: [f"/mappings/proposals/new/?exception={record.pk}", "/mappings/proposals/"],
    }
    for user, urls in pages.items():
        context, page = signed_in_page(browser, live_server, user, **phone)
        for url in urls:
            page.goto(url)
            expect(page.locator("h1")).to_have_count(1)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{url} is {width} px wide for {user.username}"
        context.close()
