"""The feed status screen (ops and admins): last file, rows, errors, the CSV URLs; an admin replaces
the feed password and sees it once; everyone else is turned away."""
import pytest
from django.urls import reverse

from integrations.models.planner_feeds import FeedRun
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def planner(db):
    connection = ConnectionFactory(code="planner", kind="inventory_planner", name="Inventory Planner",
                                   settings={"warehouses": ["MAIN"], "sftp_host": "drop.example.net",
                                             "sftp_username": "ledgerline", "sftp_remote_dir": "/inbound"},
                                   credentials={"feed_password": "old-feed-secret", "sftp_password": "sftp-secret"})
    FeedRun.objects.create(connection=connection, kind="incremental", status="failed", attempts=3, rows=12,
                           files=[{"name": "sales_orders_20261201T010000Z_1.csv", "kind": "sales_orders", "rows": 12,
                                   "sent": False}], errors=["attempt 3: uploading failed: Permission denied"])
    return connection


def status_url(code="planner"):
    return reverse("planner-feed-status", args=[code])


def test_it_shows_the_last_file_rows_and_errors_to_ops(client, ops_user, planner):
    client.force_login(ops_user)
    response = client.get(status_url())
    html = response.content.decode()
    assert response.status_code == 200 and html.count("<h1") == 1
    assert "sales_orders_20261201T010000Z_1.csv" in html and "Permission denied" in html and 'class="table-wrap' in html
    assert "/planner-feeds/planner/MAIN/products.csv" in html
    assert "old-feed-secret" not in html and "sftp-secret" not in html
    assert "Replace the feed password" not in html  # ops see, only an admin replaces


def test_it_serves_the_runs_fragment_to_htmx(client, ops_user, planner):
    client.force_login(ops_user)
    response = client.get(status_url(), HTTP_HX_REQUEST="true")
    assert response.content.decode().lstrip().startswith('<div id="feed-runs"')
    assert "HX-Request" in response["Vary"]


def test_it_lists_the_planner_connections(client, admin_user, planner):
    client.force_login(admin_user)
    html = client.get(reverse("planner-feeds")).content.decode()
    assert status_url() in html and "Failed" in html


def test_it_refuses_another_team(client, finance_user, planner):
    client.force_login(finance_user)
    assert client.get(status_url()).status_code == 403
    assert client.get(reverse("planner-feeds")).status_code == 403


def test_it_redirects_to_login_when_signed_out(client, planner):
    response = client.get(status_url())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_rejects_post_on_the_status_page(client, ops_user, planner):
    client.force_login(ops_user)
    assert client.post(status_url()).status_code == 405


def test_an_unknown_connection_is_404(client, ops_user, planner):
    client.force_login(ops_user)
    assert client.get(status_url("nope")).status_code == 404


def test_an_admin_replaces_the_feed_password_and_sees_it_once(client, admin_user, planner):
    client.force_login(admin_user)
    response = client.post(reverse("planner-feed-password", args=["planner"]))
    planner.refresh_from_db()
    new = planner.secret("feed_password")
    assert response.status_code == 200 and new != "old-feed-secret"
    assert new in response.content.decode() and response["Cache-Control"] == "no-store"
    assert new not in client.get(status_url()).content.decode()  # never shown again


def test_ops_may_not_replace_the_feed_password(client, ops_user, planner):
    client.force_login(ops_user)
    assert client.post(reverse("planner-feed-password", args=["planner"])).status_code == 403
    planner.refresh_from_db()
    assert planner.secret("feed_password") == "old-feed-secret"


def test_ops_without_a_feed_password_are_told_who_creates_it(client, ops_user, admin_user, planner):
    planner.credentials = {}
    planner.save()
    client.force_login(ops_user)
    body = client.get(status_url()).content.decode()
    assert "no password yet: the files answer 401" in body and "An admin creates the feed password" in body
    assert "purchase_orders.csv" in body  # the optional file's URL is listed with the other two
    client.force_login(admin_user)
    body = client.get(status_url()).content.decode()
    assert "Create a feed password" in body and "An admin creates" not in body
