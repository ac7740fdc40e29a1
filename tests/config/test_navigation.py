"""The top bar names the signed-in user's teams in words."""
import pytest
from django.contrib.auth.models import Group, User

pytestmark = pytest.mark.django_db


def test_the_top_bar_names_teams_as_words(client):
    user = User.objects.create_user("erin", password="pw-erin-123456")
    user.groups.add(Group.objects.get_or_create(name="ecommerce")[0], Group.objects.get_or_create(name="ops")[0])
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "erin · Ops, E-commerce" in html
    assert "ecommerce" not in html.split('class="who"', 1)[1].split("</div>", 1)[0]
