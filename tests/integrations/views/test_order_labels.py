"""The order screens speak to people: payment states in words, not the storefront's enum values."""
import pytest
from django.urls import reverse

from integrations.views.orders import payment_label
from tests.factories import OrderLinkFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state, label", [
    ("partially_refunded", "Partially refunded"), ("BalanceDue", "Balance due"), ("paid", "Paid"), ("", "Unknown"),
])
def test_payment_states_read_as_words(state, label):
    assert payment_label(state) == label


def test_the_list_and_the_detail_show_the_payment_state_in_words(client, outsider, shopify_connection):
    order = OrderLinkFactory(connection=shopify_connection, payment_state="partially_refunded")
    client.force_login(outsider)
    listing = client.get(reverse("orders")).content.decode()
    detail = client.get(reverse("order-detail", args=[order.pk])).content.decode()
    for html in (listing, detail):
        assert "Partially refunded" in html and "partially_refunded" not in html
        assert html.count("<h1") == 1
