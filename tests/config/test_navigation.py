"""The top bar names the signed-in user's teams in words; the main navigation offers each role only
what it may open (every link it shows answers 200)."""
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_top_bar_names_teams_as_words(client):
    user = User.objects.create_user("erin", password="pw-erin-123456")
    user.groups.add(Group.objects.get_or_create(name="ecommerce")[0], Group.objects.get_or_create(name="ops")[0])
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "erin · Ops, E-commerce" in html
    assert "ecommerce" not in html.split('class="who"', 1)[1].split("</div>", 1)[0]



def _nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S)
    assert nav, "no main navigation on the page"
    return re.findall(r'href="([^"]+)"', nav.group(0))


@pytest.mark.parametrize("role", ["ops_user", "finance_user", "ecommerce_user", "admin_user"])
def test_every_link_in_a_roles_navigation_opens_for_that_role(client, request, role):
    client.force_login(request.getfixturevalue(role))
    links = _nav_links(client.get(reverse("home")).content.decode())
    assert reverse("orders") in links and reverse("exceptions") in links
    for href in links:
        assert client.get(href).status_code == 200, f"{role}: {href}"


def test_only_ops_and_admins_are_shown_replenishment(client, ops_user, finance_user, ecommerce_user, admin_user):
    shown = {}
    for user in (ops_user, finance_user, ecommerce_user, admin_user):
        client.force_login(user)
        shown[user.username] = reverse("replenishment") in _nav_links(client.get(reverse("orders")).content.decode())
    assert shown == {ops_user.username: True, finance_user.username: False, ecommerce_user.username: False,
                     admin_user.username: True}


def test_the_favicon_is_served_from_static_for_browsers_that_ask_for_the_ico(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert (settings.BASE_DIR / "static" / "favicon.svg").read_text().startswith("<svg")
