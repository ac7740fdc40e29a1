import pytest
from django.urls import reverse

from exceptions_queue.services import exception_resolve

from .conftest import client_for


def badge(client) -> str:
    body = client.get(reverse("exceptions-badge"), HTTP_HX_REQUEST="true").content.decode()
    return body.split('data-count="')[1].split('"')[0]


def test_badge_counts_my_teams_open_exceptions_and_drops_on_resolve(ops_user, raise_exc):
    records = raise_exc("t_ops", n=2, cause="D1")
    raise_exc("t_finance", cause="P1")
    client = client_for(ops_user)
    assert badge(client) == "2"
    exception_resolve(record=records[0], note="done")
    assert badge(client) == "1"


def test_admin_badge_counts_every_team(admin_user, raise_exc):
    raise_exc("t_ops", cause="D1"), raise_exc("t_finance", cause="P1")
    assert badge(client_for(admin_user)) == "2"


def test_badge_refreshes_itself_every_30s_and_on_changes(ops_user):
    body = client_for(ops_user).get(reverse("exceptions")).content.decode()
    assert 'hx-trigger="every 30s, exceptionsChanged from:body"' in body


@pytest.mark.django_db
def test_badge_redirects_signed_out_visitors(client):
    assert client.get(reverse("exceptions-badge")).status_code == 302
