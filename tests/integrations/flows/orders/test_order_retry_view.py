"""POST /orders/<pk>/retry/: "Retry posting" queues the post and answers at once; the ERP is
called by a worker, never inside the web request."""
import pytest
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.models import OrmQ

from exceptions_queue.models import ExceptionRecord
from integrations.models import OrderEvent, OrderLink
from mappings.models import SkuMapping
from tests.payloads import post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def failed_order(client, order_setup, shopify_connection, django_capture_on_commit_callbacks):
    """An order held for an unmapped SKU, whose mapping has since been added: a retry posts it."""
    payload = shopify_order(number=1400, lines=[{"sku": "TEE-RED-M", "price": "20.00", "quantity": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        post_shopify_webhook(client, payload)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.FAILED
    SkuMapping.objects.create(connection=shopify_connection, storefront_sku="TEE-RED-M", erp_item_code="TEE-BLK-M")
    return link


def _url(order):
    return f"/orders/{order.pk}/retry/"


def test_it_queues_the_post_and_answers_without_calling_the_erp(
    client, order_setup, failed_order, ops_user, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", False)  # a real queue: nothing runs until a worker takes it
    client.force_login(ops_user)
    before = order_setup.erp.requests_count
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(failed_order), headers=HTMX)

    assert response.status_code == 200 and response["HX-Trigger"] == "exceptionsChanged"
    fragment = response.content.decode()
    assert "<html" not in fragment and "Retry queued" in fragment and "Retry posting" not in fragment
    assert order_setup.erp.requests_count == before
    assert OrderLink.objects.get().state == OrderLink.State.FAILED
    [queued] = [q.task for q in OrmQ.objects.all() if q.task["func"] == "integrations.tasks.post_order"]
    assert queued["args"] == (failed_order.pk,)
    retried = failed_order.timeline.get(kind=OrderEvent.Kind.RETRIED)
    assert retried.message == "Retry queued by olivia-ops"

    # What the worker then runs posts the order and clears its exception.
    assert import_string(queued["func"])(*queued["args"]) == "posted"
    assert len(order_setup.erp.sales_orders) == 1
    assert ExceptionRecord.objects.get().status == "resolved"


def test_with_a_synchronous_queue_the_retry_posts_through_the_task_after_the_answer(
    client, order_setup, failed_order, ops_user, django_capture_on_commit_callbacks
):
    client.force_login(ops_user)
    before = order_setup.erp.requests_count
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(failed_order), headers=HTMX)
        assert order_setup.erp.requests_count == before  # answered; the task runs at commit
    assert "Retry queued" in response.content.decode()
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED and len(order_setup.erp.sales_orders) == 1
    assert ExceptionRecord.objects.get().status == "resolved"


def test_a_posted_order_is_not_queued_again(client, order_setup, ops_user, monkeypatch,
                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_shopify_webhook(client, shopify_order(number=1401))
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    monkeypatch.setattr(Conf, "SYNC", False)
    client.force_login(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(link), headers=HTMX)
    fragment = response.content.decode()
    assert response.status_code == 200 and "Posted" in fragment and "Retry queued" not in fragment
    assert not OrmQ.objects.exists()
    assert not link.timeline.filter(kind=OrderEvent.Kind.RETRIED).exists()


def test_the_order_page_offers_the_retry_to_the_teams_that_may_use_it(client, failed_order, ops_user, finance_user):
    client.force_login(ops_user)
    assert "Retry posting" in client.get(f"/orders/{failed_order.pk}/").content.decode()
    client.force_login(finance_user)
    assert "Retry posting" not in client.get(f"/orders/{failed_order.pk}/").content.decode()


def test_the_order_page_says_when_an_order_is_re_posted_automatically(
    client, order_setup, ops_user, django_capture_on_commit_callbacks
):
    order_setup.erp.outage = True
    with django_capture_on_commit_callbacks(execute=True):
        post_shopify_webhook(client, shopify_order(number=1402))
    link = OrderLink.objects.get()
    client.force_login(ops_user)
    page = client.get(f"/orders/{link.pk}/").content.decode()
    assert "Ledgerline re-posts it automatically from" in page and "Retry posting" in page


def test_it_rejects_get(client, failed_order, ops_user):
    client.force_login(ops_user)
    assert client.get(_url(failed_order)).status_code == 405


@pytest.mark.parametrize("user", ["finance_user", "outsider"])
def test_it_is_forbidden_to_other_teams(client, failed_order, user, request, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)
    client.force_login(request.getfixturevalue(user))
    assert client.post(_url(failed_order), headers=HTMX).status_code == 403
    assert not failed_order.timeline.filter(kind=OrderEvent.Kind.RETRIED).exists()
    assert not OrmQ.objects.exists()


def test_it_redirects_to_the_login_page_when_signed_out(client, failed_order):
    response = client.post(_url(failed_order))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert OrderLink.objects.get().state == OrderLink.State.FAILED
