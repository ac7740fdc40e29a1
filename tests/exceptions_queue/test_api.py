import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from exceptions_queue.models import ExceptionRecord

from .conftest import FIXED

LIST = "/exceptions/api/exceptions/"


def api_for(user, token=False) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    else:
        client.force_authenticate(user)
    return client


def test_list_is_filterable_with_token_auth(ops_user, raise_exc):
    ops = raise_exc("t_ops", cause="D1")
    raise_exc("t_finance", cause="P1")
    response = api_for(ops_user, token=True).get(LIST, {"team": "ops", "status": "active"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [ops.pk]


def test_list_pages_with_a_cursor(admin_user, raise_exc):
    raise_exc("t_ops", n=60, cause="D1")
    first = api_for(admin_user).get(LIST).json()
    second = api_for(admin_user).get(first["next"]).json()
    assert len(first["results"]) == 50 and len(second["results"]) == 10
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}


def test_detail_has_runbook_and_audit_trail(outsider, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    data = api_for(outsider).get(f"{LIST}{rec.pk}/").json()
    assert data["runbook"] == "Check the depot mapping, then retry."
    assert [a["action"] for a in data["activity"]] == ["raised"]


def test_resolve_through_the_api(ops_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    response = api_for(ops_user, token=True).post(f"{LIST}{rec.pk}/resolve/", {"note": "fixed in ERP"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    assert response.json()["activity"][-1] == {**response.json()["activity"][-1], "actor": ops_user.username, "action": "resolved"}


def test_assign_comment_ignore_reopen_through_the_api(ops_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    api = api_for(ops_user)
    assert api.post(f"{LIST}{rec.pk}/assign/", {"assignee": "me"}).json()["assignee"] == ops_user.username
    assert api.post(f"{LIST}{rec.pk}/comment/", {"note": "on it"}).status_code == 200
    assert api.post(f"{LIST}{rec.pk}/ignore/", {"note": "test order"}).json()["status"] == "ignored"
    assert api.post(f"{LIST}{rec.pk}/reopen/").json()["status"] == "open"


def test_retry_through_the_api_returns_a_job(ops_user, raise_exc, q_sync):
    rec = raise_exc("t_ops", cause="D1")
    FIXED.add("t_ops:D1")
    response = api_for(ops_user).post(f"{LIST}{rec.pk}/retry/")
    assert response.status_code == 202
    assert ExceptionRecord.objects.get(pk=rec.pk).status == "resolved"
    job = api_for(ops_user).get(f"/exceptions/api/jobs/{response.json()['id']}/").json()
    assert (job["status"], job["succeeded"]) == ("done", 1)


def test_other_team_gets_403_from_the_api(finance_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    response = api_for(finance_user).post(f"{LIST}{rec.pk}/resolve/", {"note": "x"})
    assert response.status_code == 403
    assert ExceptionRecord.objects.get(pk=rec.pk).status == "open"


def test_missing_note_is_a_400(ops_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    assert api_for(ops_user).post(f"{LIST}{rec.pk}/resolve/", {}).status_code == 400


def test_actions_reject_get(ops_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    assert api_for(ops_user).get(f"{LIST}{rec.pk}/resolve/").status_code == 405


@pytest.mark.django_db
def test_anonymous_api_client_gets_401_or_403_not_a_login_page():
    response = APIClient().get(LIST)
    assert response.status_code in (401, 403)
    assert response["Content-Type"].startswith("application/json")


def test_schema_documents_the_exceptions_api(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/").content.decode()
    assert "/exceptions/api/exceptions/{id}/resolve/" in schema
    assert "/exceptions/api/exceptions/{id}/retry/" in schema
