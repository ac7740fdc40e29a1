"""Finance approves a payout with a variance in real Chromium (at phone width): the note is required, the
approval posts one journal to the sandbox ERP, and the page shows the journal and the activity."""
import re
from datetime import date

from playwright.sync_api import expect

from integrations.flows.payouts import payout_match
from integrations.models import BalanceTransaction, OrderLink, Payout
from tests.factories import ConnectionFactory, OrderLinkFactory


def test_finance_approves_a_payout_with_a_variance_note(transactional_db, sandbox, live_server, page, sign_in,
                                                        finance_user, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the posting batch runs as soon as the approval commits
    shop = ConnectionFactory(code="shopify", kind="shopify", name="Shopify store")
    order = OrderLinkFactory(connection=shop, state=OrderLink.State.POSTED, erp_order_id="SO-1", total_minor=4200,
                             erp_total_minor=4200)
    payout = Payout.objects.create(connection=shop, source=Payout.Source.SHOPIFY_PAYMENTS, external_id="8801000001",
                                   currency="GBP", amount_minor=4113 + 1500, fee_minor=87, payout_date=date(2026, 11, 5))
    for n, (order_id, amount, fee) in enumerate(((order.storefront_order_id, 4200, 87), ("999999", 1500, 0))):
        BalanceTransaction.objects.create(payout=payout, connection=shop, external_id=f"bt-{n}", type="charge",
                                          storefront_order_id=order_id, amount_minor=amount, fee_minor=fee,
                                          net_minor=amount - fee, currency="GBP")
    payout_match(payout.pk)

    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(finance_user)
    page.goto("/payouts/")
    page.get_by_role("link", name="8801000001").click()
    expect(page.locator("h1")).to_have_text("Payout 8801000001")
    expect(page.locator('[data-total="variance"]')).to_have_text("15.00")
    page.get_by_role("button", name="Approve").click()
    assert page.get_by_label("Note (required: explain the variance)").evaluate("el => el.validity.valueMissing")
    assert Payout.objects.get(pk=payout.pk).status == Payout.Status.VARIANCE

    page.get_by_label("Note (required: explain the variance)").fill("Order 999999 was sold on the old shop")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#journal")).to_have_text(re.compile(r"\S+"))
    expect(page.locator("#payout-panel [data-status]").first).to_have_text("Posted")
    expect(page.locator("#activity")).to_contain_text("approved: Order 999999 was sold on the old shop")
    [journal] = [j for j in sandbox.erp.journals if j["external_reference"] == f"payout:shopify:{payout.pk}"]
    assert Payout.objects.get(pk=payout.pk).journal_reference == journal["id"] == page.locator("#journal").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling of the page
