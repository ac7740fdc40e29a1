"""Styled error pages that say what to do: 403 (which role, whom to ask), 404 (check the address, go
home), 500 (self-contained; try again, it is logged; the reference to quote)."""
import pytest
from django.template import loader
from django.test import RequestFactory
from django.views.defaults import server_error

from tests.factories import OrderLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def production_pages(settings):
    settings.DEBUG = False  # Django's technical pages are what DEBUG shows; users see ours


def test_a_403_is_the_styled_page_saying_who_may_and_whom_to_ask(client, finance_user, shopify_connection):
    order = OrderLinkFactory(connection=shopify_connection, state="failed")
    client.force_login(finance_user)
    response = client.post(f"/orders/{order.pk}/retry/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'class="topbar"' in html and 'id="content"' in html and html.count("<h1") == 1
    assert "Only ops, e-commerce or admin may retry an order." in html
    assert "fred-finance" in html and "Ask an admin to add you" in html


def test_a_404_is_the_styled_page_with_a_way_home(client, ops_user):
    client.force_login(ops_user)
    response = client.get("/orders/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'class="topbar"' in html and html.count("<h1") == 1
    assert "Check the address" in html and 'href="/"' in html
    assert "OrderLink" not in html  # no model names or query details


def test_an_unknown_address_is_the_styled_404_even_signed_out(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


def test_the_500_page_quotes_the_reference_and_needs_no_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        html = loader.render_to_string("500.html", {"request_id": "req-4f2a"})
    assert "req-4f2a" in html and "Quote this reference" in html and "try again" in html
    assert "<link" not in html  # self-contained: nothing to fetch from a server that is failing


def test_the_500_page_renders_with_no_context_at_all():
    response = server_error(RequestFactory().get("/"))  # Django's own handler passes no context
    html = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in html and "Reference" not in html
