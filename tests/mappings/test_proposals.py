"""Mapping proposals: the exception's team proposes the row it needs, an admin approves it (the row
is added, the exception retried, both audited) or rejects it with a reason."""
import pytest
from django.test import Client
from django.urls import reverse

from exceptions_queue.models import BulkJob, ExceptionRecord
from integrations.flows.orders import erp_caches_clear
from integrations.models import OrderLink
from mappings.models import MappingProposal, SkuMapping
from tests.factories import (
    DepotMappingFactory, ExceptionRecordFactory, OrderLinkFactory, SkuMappingFactory, TaxCodeMappingFactory,
)
from tests.payloads import post_shopify_webhook, shopify_order

from .conftest import HTMX


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return client_for(admin_user)  # its own client: these tests hold an ops and an admin session at once


@pytest.fixture
def ops_client(ops_user):
    return client_for(ops_user)


@pytest.fixture
def unknown_sku(shopify_connection):
    """An open ops exception: SKU TEE-RED-M on a Shopify order has no ERP item."""
    order = OrderLinkFactory(connection=shopify_connection, order_number="#1001")
    return ExceptionRecordFactory(
        type_code="unknown_sku", team="ops", order=order, sku="TEE-RED-M", key="unknown_sku:order-1:TEE-RED-M",
    )


def propose_url(record) -> str:
    return f"{reverse('mapping-propose')}?exception={record.pk}"


def propose(client, record, erp_item_code="TEE-BLK-M", **extra):
    data = {"connection": "shopify", "storefront_sku": "TEE-RED-M", "erp_item_code": erp_item_code, "active": "on",
            "comment": "The red tee is sold as the black tee's item until merch creates it", **extra}
    return client.post(propose_url(record), data)


def timeline(record) -> list[tuple[str, str, str]]:
    return [(a.actor_name, a.action, a.note) for a in record.activity.select_related("actor")]


# --- the offer on the exception page ----------------------------------------------------------

def test_ops_user_is_offered_to_propose_the_mapping_on_the_exception(client, ops_user, unknown_sku):
    client.force_login(ops_user)
    html = client.get(reverse("exception-detail", args=[unknown_sku.pk])).content.decode()
    assert f'<a href="{propose_url(unknown_sku)}">Propose a mapping</a>' in html
    runbook = html[html.index('class="runbook"'):]
    assert "Propose a mapping" in runbook and "an admin approves it" in runbook


def test_admin_is_offered_the_prefilled_add_form_instead(client, admin_user, unknown_sku):
    client.force_login(admin_user)
    html = client.get(reverse("exception-detail", args=[unknown_sku.pk])).content.decode()
    assert "Add the mapping" in html and f'href="{propose_url(unknown_sku)}"' not in html
    add = client.get(reverse("mapping-add", args=["skus"]), {"connection": "shopify", "storefront_sku": "TEE-RED-M"})
    assert 'value="TEE-RED-M"' in add.content.decode()


def test_no_offer_for_another_team_or_a_type_no_mapping_fixes(client, finance_user, ops_user, unknown_sku):
    client.force_login(finance_user)  # unknown_sku belongs to ops
    html = client.get(reverse("exception-detail", args=[unknown_sku.pk])).content.decode()
    assert "Propose a mapping</a>" not in html and propose_url(unknown_sku) not in html
    other = ExceptionRecordFactory(type_code="customer_conflict", team="ops", order=unknown_sku.order, sku="")
    client.force_login(ops_user)
    assert 'data-testid="mapping-offer"' not in client.get(reverse("exception-detail", args=[other.pk])).content.decode()
    assert client.get(propose_url(other)).status_code == 400


def test_an_already_mapped_sku_is_not_offered_and_its_proposal_is_refused(ops_client, erp, unknown_sku):
    SkuMappingFactory(connection=unknown_sku.order.connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    html = ops_client.get(reverse("exception-detail", args=[unknown_sku.pk])).content.decode()
    assert "already exists" in html and "Propose a mapping</a>" not in html
    response = propose(ops_client, unknown_sku)
    assert response.status_code == 400
    assert "SKU TEE-RED-M is already mapped to 10042" in response.content.decode()
    assert not MappingProposal.objects.exists()


# --- proposing --------------------------------------------------------------------------------

def test_the_proposal_form_is_prefilled_from_the_exception(ops_client, unknown_sku):
    response = ops_client.get(propose_url(unknown_sku))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<h1") == 1
    assert 'name="storefront_sku" value="TEE-RED-M"' in html
    assert '<option value="shopify" selected>' in html
    assert "Storefront SKU" in html and "ERP item" in html and "Erp item code" not in html


def test_ops_proposes_and_the_timeline_says_so(ops_client, ops_user, erp, unknown_sku):
    response = propose(ops_client, unknown_sku)
    assert response.status_code == 302 and response["Location"] == reverse("exception-detail", args=[unknown_sku.pk])
    proposal = MappingProposal.objects.get()
    assert (proposal.status, proposal.table, proposal.key) == ("pending", "skus", "shopify · TEE-RED-M")
    assert proposal.values["erp_item_code"] == "TEE-BLK-M" and proposal.proposed_by == ops_user
    assert proposal.exception == unknown_sku
    assert not SkuMapping.objects.exists()  # nothing changes until an admin approves
    who, action, note = timeline(unknown_sku)[-1]
    assert (who, action) == ("olivia-ops", "commented")
    assert "Proposed a mapping: SKU mapping shopify · TEE-RED-M (ERP item TEE-BLK-M" in note
    page = ops_client.get(response["Location"]).content.decode()
    assert "waiting for an admin" in page and "Propose a mapping</a>" not in page


def test_an_erp_item_the_erp_does_not_have_is_refused_when_proposing(ops_client, erp, unknown_sku):
    response = propose(ops_client, unknown_sku, erp_item_code="NOPE-1")
    assert response.status_code == 400
    assert "ERP item NOPE-1 does not exist in the ERP" in response.content.decode()
    assert not MappingProposal.objects.exists()


def test_the_same_mapping_is_not_proposed_twice(ops_client, erp, unknown_sku, shopify_connection):
    assert propose(ops_client, unknown_sku).status_code == 302
    second = ExceptionRecordFactory(type_code="unknown_sku", team="ops", sku="TEE-RED-M",
                                    order=OrderLinkFactory(connection=shopify_connection))
    response = propose(ops_client, second, erp_item_code="10042")
    assert response.status_code == 400
    assert "olivia-ops already proposed SKU mapping shopify · TEE-RED-M" in response.content.decode()
    assert MappingProposal.objects.count() == 1


def test_who_may_propose(client, outsider, finance_user, unknown_sku, erp):
    assert client.get(propose_url(unknown_sku)).status_code == 302  # signed out: to the login page
    for user in (outsider, finance_user):  # no team / another team than the exception's
        c = client_for(user)
        assert c.get(propose_url(unknown_sku)).status_code == 403
        assert propose(c, unknown_sku).status_code == 403
    assert not MappingProposal.objects.exists()
    assert client_for(finance_user).put(propose_url(unknown_sku)).status_code == 405


def test_a_bad_exception_number_is_a_clear_400(ops_client):
    for value in ("abc", "-1", "99999999999999999999999", ""):
        response = ops_client.get(f"{reverse('mapping-propose')}?exception={value}")
        assert response.status_code == 400, value
        assert "Open this page from an exception" in response.content.decode()
    assert ops_client.get(f"{reverse('mapping-propose')}?exception=424242").status_code == 404


def test_finance_proposes_a_tax_code_prefilled_with_rate_and_country(client, finance_user, erp, shopify_connection):
    record = ExceptionRecordFactory(
        type_code="missing_tax_mapping", team="finance", sku="", order=OrderLinkFactory(connection=shopify_connection),
        context={"rate": "0.2", "rate_percent": "20", "country": "GB"},
    )
    c = client_for(finance_user)
    html = c.get(propose_url(record)).content.decode()
    assert 'name="rate" value="0.2"' in html and 'name="country" value="GB"' in html
    response = c.post(propose_url(record), {"connection": "shopify", "rate": "0.2", "country": "GB",
                                            "tax_category": "", "erp_tax_code": "S20"})
    assert response.status_code == 302
    assert MappingProposal.objects.get().key == "shopify · * · 0.2 · GB"


# --- deciding ---------------------------------------------------------------------------------

@pytest.fixture
def proposal(ops_client, erp, unknown_sku):
    assert propose(ops_client, unknown_sku).status_code == 302
    return MappingProposal.objects.get()


def test_admins_see_the_proposal_under_the_proposals_tab_with_a_count(admin_client, proposal):
    html = admin_client.get(reverse("mappings")).content.decode()
    assert 'id="proposals-badge" aria-label="1 waiting">1<' in html
    html = admin_client.get(reverse("mapping-proposals")).content.decode()
    assert html.count("<h1") == 1
    assert "shopify · TEE-RED-M" in html and "olivia-ops" in html
    assert "<dt>ERP item</dt><dd>TEE-BLK-M</dd>" in html and "<dt>Active</dt><dd>Yes</dd>" in html
    assert "The red tee is sold as the black tee" in html
    assert reverse("mapping-proposal-approve", args=[proposal.pk]) in html


def test_ops_can_propose_but_not_approve_or_reject(ops_client, proposal):
    html = ops_client.get(reverse("mapping-proposals")).content.decode()
    assert "shopify · TEE-RED-M" in html
    assert reverse("mapping-proposal-approve", args=[proposal.pk]) not in html
    assert ops_client.post(reverse("mapping-proposal-approve", args=[proposal.pk])).status_code == 403
    assert ops_client.post(reverse("mapping-proposal-reject", args=[proposal.pk]), {"reason": "no"}).status_code == 403
    proposal.refresh_from_db()
    assert proposal.status == "pending" and not SkuMapping.objects.exists()


def test_the_proposals_tab_needs_a_sign_in(client):
    response = client.get(reverse("mapping-proposals"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_deciding_needs_a_post(admin_client, proposal):
    assert admin_client.get(reverse("mapping-proposal-approve", args=[proposal.pk])).status_code == 405
    assert admin_client.get(reverse("mapping-proposal-reject", args=[proposal.pk])).status_code == 405
    assert admin_client.post(reverse("mapping-proposal-approve", args=[424242])).status_code == 404


def test_admin_approves_in_one_click(admin_client, admin_user, proposal, unknown_sku, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = admin_client.post(reverse("mapping-proposal-approve", args=[proposal.pk]))
    row = SkuMapping.objects.get()
    assert (row.storefront_sku, row.erp_item_code, row.active) == ("TEE-RED-M", "TEE-BLK-M", True)
    # the same audit as an admin's own add: a history version by the admin, saying why
    version = row.history.get()
    assert version.history_user == admin_user
    assert version.history_change_reason == f"Proposal #{proposal.pk} by olivia-ops, approved"
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by, proposal.mapping_id) == ("approved", admin_user, row.pk)
    assert proposal.decided_at is not None
    assert proposal.history.first().history_user == admin_user
    # the exception is retried: one queued job holding it, and the page follows that job
    assert len(queued) == 1
    job = BulkJob.objects.get()
    assert job.exception_ids == [unknown_sku.pk] and job.created_by == admin_user
    assert response.status_code == 302
    assert response["Location"] == reverse("mapping-detail", args=["skus", row.pk]) + f"?job={job.pk}"
    who, action, note = timeline(unknown_sku)[-1]
    assert who == "ada-admin" and "Approved the proposed mapping SKU mapping shopify · TEE-RED-M" in note
    page = admin_client.get(response["Location"]).content.decode()
    assert "Approved: the SKU mapping shopify · TEE-RED-M is added." in page
    assert 'hx-trigger="every 2s"' in page  # following the retry


def test_approving_twice_adds_one_row(admin_client, proposal):
    assert admin_client.post(reverse("mapping-proposal-approve", args=[proposal.pk])).status_code == 302
    response = admin_client.post(reverse("mapping-proposal-approve", args=[proposal.pk]))
    assert response.status_code == 409
    assert "This proposal was already approved by ada-admin" in response.content.decode()
    assert SkuMapping.objects.count() == 1


def test_a_row_added_meanwhile_refuses_the_approval_clearly(admin_client, proposal, shopify_connection):
    SkuMappingFactory(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="10042")
    response = admin_client.post(reverse("mapping-proposal-approve", args=[proposal.pk]))
    assert response.status_code == 409
    assert "Cannot approve SKU mapping shopify · TEE-RED-M: SKU TEE-RED-M is already mapped to 10042" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == "pending"  # still there: the admin can reject it with that reason
    assert SkuMapping.objects.get().erp_item_code == "10042"


def test_rejecting_needs_a_reason(admin_client, proposal):
    response = admin_client.post(reverse("mapping-proposal-reject", args=[proposal.pk]), {"reason": "   "})
    assert response.status_code == 400
    assert "Say why the proposal is rejected" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == "pending"


def test_admin_rejects_with_a_reason_the_timeline_shows(admin_client, admin_user, ops_client, proposal, unknown_sku):
    response = admin_client.post(reverse("mapping-proposal-reject", args=[proposal.pk]),
                                 {"reason": "TEE-BLK-M is another colour: create the item in the ERP"})
    assert response.status_code == 302 and response["Location"] == reverse("mapping-proposals")
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by) == ("rejected", admin_user)
    assert proposal.note == "TEE-BLK-M is another colour: create the item in the ERP"
    assert not SkuMapping.objects.exists()
    who, action, note = timeline(unknown_sku)[-1]
    assert who == "ada-admin" and note.endswith(": TEE-BLK-M is another colour: create the item in the ERP")
    html = ops_client.get(reverse("exception-detail", args=[unknown_sku.pk])).content.decode()
    assert "Rejected the proposed mapping" in html
    assert "Propose a mapping</a>" in html  # ops may propose a better one
    decided = admin_client.get(reverse("mapping-proposals")).content.decode()
    assert "Rejected" in decided and "No proposals are waiting." in decided
    assert admin_client.post(reverse("mapping-proposal-approve", args=[proposal.pk])).status_code == 409


# --- the whole path, through the real order flow ----------------------------------------------

@pytest.fixture
def q_sync(settings, monkeypatch, transactional_db):
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 reads the setting once, at import


def test_an_approved_proposal_posts_the_waiting_order(q_sync, sandbox, shopify_connection, ops_user, admin_user):
    erp_caches_clear()
    for code in ("TEE-BLK-M", "SHIPPING", "CUSTOM", "DISCOUNT"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    DepotMappingFactory(connection=shopify_connection, country="", depot_code="MAIN")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0.2", country="GB", erp_tax_code="T1")
    TaxCodeMappingFactory(connection=shopify_connection, rate="0", country="GB", erp_tax_code="T0")
    payload = shopify_order(order_id=5_560_001, number=2101, lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}])
    assert post_shopify_webhook(Client(), payload).status_code == 200
    record = ExceptionRecord.objects.get(type_code="unknown_sku", status="open")

    assert propose(client_for(ops_user), record).status_code == 302
    proposal = MappingProposal.objects.get()
    admin = client_for(admin_user)
    response = admin.post(reverse("mapping-proposal-approve", args=[proposal.pk]))
    assert response.status_code == 302

    record.refresh_from_db()
    assert record.status == "resolved"
    assert OrderLink.objects.get().state == OrderLink.State.POSTED
    actions = [(who, action) for who, action, _ in timeline(record)]
    assert ("olivia-ops", "commented") in actions and ("ada-admin", "retried") in actions
    assert actions[-1][1] == "auto_resolved"
    page = admin.get(response["Location"]).content.decode()
    assert "Retry finished:</strong> 1 resolved" in page and 'data-state="resolved"' in page
    erp_caches_clear()
