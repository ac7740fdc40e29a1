"""The catalogue status and publish queue screens: who may use them, the page and its HTMX fragment."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = [("catalogue", "Catalogue status", "item-table"), ("catalogue-queue", "Publish queue", "queue-table")]


@pytest.mark.parametrize("name, heading, fragment", PAGES)
def test_it_shows_the_page_to_ecommerce(client, ecommerce_user, shopify_connection, name, heading, fragment):
    client.force_login(ecommerce_user)
    body = client.get(reverse(name)).content.decode()
    assert f"<h1>{heading}</h1>" in body and f'id="{fragment}"' in body
    assert 'aria-current="page">Catalogue</a>' in body  # the main navigation says where we are


@pytest.mark.parametrize("name, heading, fragment", PAGES)
def test_an_htmx_request_gets_the_fragment_only(client, admin_user, name, heading, fragment):
    client.force_login(admin_user)
    response = client.get(reverse(name), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert f'id="{fragment}"' in body and "<h1" not in body and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("name", ["catalogue", "catalogue-queue"])
def test_it_refuses_other_teams_and_asks_visitors_to_sign_in(client, ops_user, name):
    assert "/accounts/login/" in client.get(reverse(name))["Location"]
    client.force_login(ops_user)
    assert client.get(reverse(name)).status_code == 403


def test_the_catalogue_link_is_only_in_the_menu_of_those_who_may_open_it(client, ops_user, ecommerce_user):
    client.force_login(ops_user)
    assert reverse("catalogue") not in client.get(reverse("orders")).content.decode()
    client.force_login(ecommerce_user)
    assert f'href="{reverse("catalogue")}"' in client.get(reverse("orders")).content.decode()


def test_release_refuses_get(client, ecommerce_user):
    client.force_login(ecommerce_user)
    assert client.get(reverse("catalogue-release")).status_code == 405
