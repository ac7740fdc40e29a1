"""The order's whole life on one page: each dispatch in the timeline with its lines, carrier, tracking
link and when the customer was notified; the orders list filters dispatched, partly dispatched and
refunded orders."""
import pytest
from django.utils import timezone

from integrations.models import Dispatch, OrderEvent, OrderLink
from tests.factories import OrderLinkFactory

pytestmark = pytest.mark.django_db


def _dispatched(connection, *, state=OrderLink.State.DISPATCHED, status=Dispatch.Status.SENT, url="https://track.example/RM1"):
    order = OrderLinkFactory(connection=connection, state=state, erp_order_id="SO-1")
    entry = OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.DISPATCHED, message="DSP-1: 2 × TEE-BLK-M")
    Dispatch.objects.create(erp="erp", erp_dispatch_id="DSP-1", order=order, timeline_event=entry,
                            lines=[{"item_code": "TEE-BLK-M", "quantity": 2, "line_reference": "11"}],
                            carrier="RM48", tracking_company="Royal Mail", tracking_number="RM1", tracking_url=url,
                            storefront_status=status, customer_notified=status == Dispatch.Status.SENT,
                            notified_at=timezone.now() if status == Dispatch.Status.SENT else None)
    return order


def test_the_order_page_shows_each_dispatch_with_its_tracking_link(client, outsider, shopify_connection):
    order = _dispatched(shopify_connection)
    OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.REFUND_RECEIVED, message="Refund 5.00 GBP")
    client.force_login(outsider)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert '<a href="https://track.example/RM1" rel="noopener noreferrer" target="_blank">RM1</a>' in page
    assert "2 × TEE-BLK-M" in page and "Royal Mail" in page and "(ERP: RM48)" in page
    assert "notified " in page and "Storefront updated" in page
    # The timeline stays one list in order: the refund entry follows the dispatch.
    assert page.index("Dispatched in the ERP") < page.index("Refund received")


def test_a_tracking_url_that_is_not_a_web_address_is_not_a_link(client, outsider, shopify_connection):
    order = _dispatched(shopify_connection, url="javascript:alert(1)")
    client.force_login(outsider)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "javascript:" not in page and ">RM1<" in page


@pytest.mark.parametrize("choice, expected", [
    ("dispatched", {"#D"}), ("partly_dispatched", {"#P"}), ("refunded", {"#R", "#RE"}), ("storefront_not_told", {"#P"}),
])
def test_the_list_filters_what_happened_after_posting(client, outsider, shopify_connection, choice, expected):
    OrderLinkFactory(connection=shopify_connection, order_number="#D", state=OrderLink.State.DISPATCHED)
    partly = _dispatched(shopify_connection, state=OrderLink.State.PARTLY_DISPATCHED, status=Dispatch.Status.RETRYING)
    partly.order_number = "#P"
    partly.save()
    OrderLinkFactory(connection=shopify_connection, order_number="#R", state=OrderLink.State.REFUNDED)
    refunded_in_part = OrderLinkFactory(connection=shopify_connection, order_number="#RE", state=OrderLink.State.POSTED)
    OrderEvent.objects.create(order=refunded_in_part, kind=OrderEvent.Kind.CREDIT_MEMO_POSTED, message="CM-1 5.00")
    OrderLinkFactory(connection=shopify_connection, order_number="#N", state=OrderLink.State.POSTED)
    client.force_login(outsider)
    response = client.get("/orders/", {"after_posting": choice}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    shown = {n for n in ("#D", "#P", "#R", "#RE", "#N") if f">{n}<" in response.content.decode()}
    assert shown == expected
    assert b"<html" not in response.content  # the table fragment only


def test_an_unknown_filter_choice_is_not_a_500(client, outsider, shopify_connection):
    client.force_login(outsider)
    assert client.get("/orders/", {"after_posting": "nonsense"}).status_code == 200


def test_signed_out_is_sent_to_sign_in_and_post_is_refused(client, outsider, shopify_connection):
    order = _dispatched(shopify_connection)
    assert client.get(f"/orders/{order.pk}/").status_code == 302
    client.force_login(outsider)
    assert client.post(f"/orders/{order.pk}/").status_code == 405
