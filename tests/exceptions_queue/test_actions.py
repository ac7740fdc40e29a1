"""Each action on one exception, for each role: happy path, HTMX fragment, 403, 405, login redirect."""
import pytest
from django.urls import reverse

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve

from .conftest import HTMX, TYPES, FIXED, client_for

# action -> (POST data, what the exception looks like afterwards, the audit entry)
ACTIONS = {
    "assign": ({"assignee": "me"}, {"status": "in_progress"}, "assigned"),
    "comment": ({"note": "Asked the warehouse"}, {"status": "open"}, "commented"),
    "resolve": ({"note": "Depot code corrected"}, {"status": "resolved", "resolution_note": "Depot code corrected"}, "resolved"),
    "ignore": ({"note": "Test order"}, {"status": "ignored", "resolution_note": "Test order"}, "ignored"),
    "retry": ({}, {"status": "resolved"}, "retried"),
}


@pytest.fixture
def ops_exc(raise_exc, q_sync):
    FIXED.add("t_ops:D1")
    return raise_exc("t_ops", cause="D1")


@pytest.mark.parametrize("action", ACTIONS)
def test_owning_team_acts_and_the_audit_trail_names_them(action, ops_user, ops_exc):
    data, expected, audit = ACTIONS[action]
    response = client_for(ops_user).post(reverse(f"exception-{action}", args=[ops_exc.pk]), data)

    assert response.status_code == 302 and response["Location"] == reverse("exception-detail", args=[ops_exc.pk])
    record = ExceptionRecord.objects.get(pk=ops_exc.pk)
    for field, value in expected.items():
        assert getattr(record, field) == value
    entry = record.activity.get(action=audit)
    assert entry.actor == ops_user
    page = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk])).content.decode()
    assert f"<strong>{ops_user.username}</strong> · {audit}" in page


@pytest.mark.parametrize("action", ACTIONS)
def test_htmx_action_answers_with_the_updated_panel(action, ops_user, ops_exc):
    data, expected, _ = ACTIONS[action]
    response = client_for(ops_user).post(reverse(f"exception-{action}", args=[ops_exc.pk]), data, **HTMX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="exception-panel"') and "<html" not in body
    assert response["HX-Trigger"] == "exceptionsChanged"
    label = dict(ExceptionRecord.Status.choices)[expected["status"]]
    assert f'id="exception-status">{label}<' in body


@pytest.mark.parametrize("action", [*ACTIONS, "reopen"])
def test_other_team_gets_403(action, finance_user, ops_exc):
    data = ACTIONS.get(action, ({},))[0]
    response = client_for(finance_user).post(reverse(f"exception-{action}", args=[ops_exc.pk]), data)
    assert response.status_code == 403
    assert ExceptionRecord.objects.get(pk=ops_exc.pk).status == "open"


@pytest.mark.parametrize("action", [*ACTIONS, "reopen"])
def test_actions_reject_get(action, ops_user, ops_exc):
    assert client_for(ops_user).get(reverse(f"exception-{action}", args=[ops_exc.pk])).status_code == 405


@pytest.mark.parametrize("action", [*ACTIONS, "reopen"])
def test_actions_redirect_signed_out_visitors_to_login(action, client, ops_exc):
    response = client.post(reverse(f"exception-{action}", args=[ops_exc.pk]), ACTIONS.get(action, ({},))[0])
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert ExceptionRecord.objects.get(pk=ops_exc.pk).status == "open"


@pytest.mark.parametrize("user_fixture", ["finance_user", "ecommerce_user", "admin_user"])
def test_each_team_acts_on_its_own_and_admin_on_all(user_fixture, request, raise_exc):
    user = request.getfixturevalue(user_fixture)
    records = {code: raise_exc(code, cause="X") for code in TYPES}
    client = client_for(user)
    allowed = {code for code, t in TYPES.items() if user_fixture == "admin_user" or t.team in user_fixture}
    for code, record in records.items():
        response = client.post(reverse("exception-comment", args=[record.pk]), {"note": "looking"})
        assert response.status_code == (302 if code in allowed else 403), code


def test_reopen_brings_back_a_resolved_exception(ops_user, ops_exc):
    exception_resolve(record=ops_exc, note="done")
    response = client_for(ops_user).post(reverse("exception-reopen", args=[ops_exc.pk]), **HTMX)
    assert ExceptionRecord.objects.get(pk=ops_exc.pk).status == "open"
    assert "reopened" in response.content.decode()


def test_resolve_without_a_note_is_refused_and_says_why(ops_user, ops_exc):
    response = client_for(ops_user).post(reverse("exception-resolve", args=[ops_exc.pk]), {"note": ""}, **HTMX)
    assert "This field is required" in response.content.decode()
    assert "HX-Trigger" not in response
    assert ExceptionRecord.objects.get(pk=ops_exc.pk).status == "open"


def test_assign_to_someone_outside_the_team_is_refused(ops_user, finance_user, ops_exc):
    response = client_for(ops_user).post(reverse("exception-assign", args=[ops_exc.pk]), {"assignee": finance_user.username}, **HTMX)
    assert "member of the owning team" in response.content.decode()
    assert ExceptionRecord.objects.get(pk=ops_exc.pk).assignee is None


def test_a_recurrence_reopens_with_count_and_history_kept(ops_user, ops_exc):
    exception_resolve(record=ops_exc, note="done", actor=ops_user)
    again = exception_raise(exc_type=TYPES["t_ops"], key="k1:D1", fingerprint="D1", message="failed again")
    assert again.pk == ops_exc.pk and again.status == "open" and again.occurrences == 2
    assert list(again.activity.values_list("action", flat=True)) == ["raised", "resolved", "reopened"]


def test_other_team_sees_the_exception_without_action_buttons(finance_user, ops_exc):
    body = client_for(finance_user).get(reverse("exception-detail", args=[ops_exc.pk])).content.decode()
    assert ops_exc.title in body
    assert "Only the Ops team" in body
    assert reverse("exception-resolve", args=[ops_exc.pk]) not in body


def test_detail_page_shows_runbook_context_error_and_timeline(ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk])).content.decode()
    assert "Check the depot mapping, then retry." in body
    assert "422 Unprocessable Entity" in body
    assert "&quot;depot&quot;: &quot;D1&quot;" in body
    assert "Ledgerline</strong> · raised" in body
    assert reverse("exception-resolve", args=[ops_exc.pk]) in body


def test_detail_htmx_gets_the_drawer_panel(ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk]), **HTMX).content.decode()
    assert body.lstrip().startswith('<div id="exception-panel"')


def test_detail_rejects_post(ops_user, ops_exc):
    assert client_for(ops_user).post(reverse("exception-detail", args=[ops_exc.pk])).status_code == 405


def test_detail_redirects_signed_out_visitors(client, ops_exc):
    assert "/accounts/login/" in client.get(reverse("exception-detail", args=[ops_exc.pk]))["Location"]
