"""Hostile or malformed input to the exceptions API and screens: a clear 4xx with a message, and
nothing written (issue 13). Lengths and integer ranges are checked by the product itself, so this
holds on SQLite and on PostgreSQL alike."""
import logging

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from exceptions_queue.models import ExceptionActivity, ExceptionRecord

from .conftest import HTMX, client_for

pytestmark = pytest.mark.django_db

LIST = "/exceptions/api/exceptions/"
BULK = reverse("exceptions-bulk")
HUGE = "9" * 30


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post_raw_json(user, url: str, body: str):
    return api_for(user).post(url, data=body, content_type="application/json")


def comments(record) -> int:
    return ExceptionActivity.objects.filter(exception=record, action="commented").count()


def assert_api_refused(response, error_part: str, message_part: str = ""):
    assert response.status_code == 400, response.content
    body = response.json()
    assert error_part in body["error"] and message_part in body["message"]


# --- the REST API's bodies -------------------------------------------------------------------

def test_a_comment_nested_thousands_deep_is_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    body = '{"note": ' + "[" * 5000 + "]" * 5000 + "}"
    assert_api_refused(post_raw_json(ops_user, f"{LIST}{record.pk}/comment/", body), "nested too deeply", "64 levels")
    assert comments(record) == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_infinity_in_a_body_is_400(ops_user, raise_exc, constant):
    record = raise_exc("t_ops")
    response = post_raw_json(ops_user, f"{LIST}{record.pk}/comment/", f'{{"note": "x", "n": {constant}}}')
    assert_api_refused(response, "not valid JSON", constant)
    assert comments(record) == 0


def test_a_nul_character_in_a_json_body_is_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    response = post_raw_json(ops_user, f"{LIST}{record.pk}/comment/", '{"note": "on it\\u0000"}')
    assert_api_refused(response, "cannot be stored", "NUL")
    assert comments(record) == 0


def test_a_refused_body_is_logged_as_a_warning_without_its_text(ops_user, raise_exc, caplog):
    record = raise_exc("t_ops")
    with caplog.at_level(logging.WARNING, logger="ledgerline.security"):
        post_raw_json(ops_user, f"{LIST}{record.pk}/comment/", '{"note": "my-password\\u0000"}')
    [log] = [r for r in caplog.records if r.name == "ledgerline.security"]
    assert log.levelno == logging.WARNING and "my-password" not in log.getMessage()


def test_a_comment_beyond_its_limit_is_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    response = api_for(ops_user).post(f"{LIST}{record.pk}/comment/", {"note": "x" * 2001}, format="json")
    assert response.status_code == 400 and "2000" in str(response.json()["note"])
    assert comments(record) == 0


def test_a_reopen_note_beyond_its_limit_or_a_body_that_is_not_an_object_is_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    api = api_for(ops_user)
    assert api.post(f"{LIST}{record.pk}/ignore/", {"note": "test order"}, format="json").status_code == 200
    assert api.post(f"{LIST}{record.pk}/reopen/", {"note": "x" * 2001}, format="json").status_code == 400
    assert post_raw_json(ops_user, f"{LIST}{record.pk}/reopen/", '["not", "an", "object"]').status_code == 400
    assert ExceptionRecord.objects.get(pk=record.pk).status == "ignored"
    # ...and a plain reopen, with or without a note, still works
    assert api.post(f"{LIST}{record.pk}/reopen/", {"note": "came back"}, format="json").json()["status"] == "open"


def test_an_assignee_longer_than_any_username_is_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    response = api_for(ops_user).post(f"{LIST}{record.pk}/assign/", {"assignee": "u" * 10_000}, format="json")
    assert response.status_code == 400 and "assignee" in response.json()
    assert ExceptionRecord.objects.get(pk=record.pk).assignee is None


def test_an_id_beyond_64_bits_in_an_api_filter_is_400(ops_user, raise_exc):
    raise_exc("t_ops")
    response = api_for(ops_user).get(LIST, {"assignee": HUGE})
    assert response.status_code == 400


# --- the screens' forms and query parameters -------------------------------------------------

@pytest.mark.parametrize("ids", [[HUGE], [str(2**63)], ["1", HUGE]], ids=["30-digits", "2**63", "mixed"])
def test_bulk_ids_beyond_64_bits_are_a_form_error_and_nothing_changes(ops_user, raise_exc, ids):
    record = raise_exc("t_ops")
    response = client_for(ops_user).post(BULK, {"action": "resolve", "ids": ids, "note": "done"}, **HTMX)
    assert response.status_code == 200
    assert "is not an exception id" in response.content.decode()
    assert ExceptionRecord.objects.get(pk=record.pk).status == "open"


def test_bulk_ids_beyond_64_bits_without_htmx_redirect_with_the_message(ops_user, raise_exc):
    raise_exc("t_ops")
    client = client_for(ops_user)
    response = client.post(BULK, {"action": "assign", "ids": [HUGE], "assignee": "me"}, follow=True)
    assert "is not an exception id" in response.content.decode()


def test_the_largest_64_bit_id_is_a_valid_selection_of_nothing(ops_user, raise_exc):
    record = raise_exc("t_ops")
    response = client_for(ops_user).post(BULK, {"action": "resolve", "ids": [str(2**63 - 1)], "note": "x"}, **HTMX)
    assert response.status_code == 200 and "is not an exception id" not in response.content.decode()
    assert ExceptionRecord.objects.get(pk=record.pk).status == "open"


@pytest.mark.parametrize("query", [
    {"page": HUGE}, {"after": f"x~{HUGE}"}, {"after": f"{HUGE}~{HUGE}", "sort": "-occurrences"},
    {"before": f"2026-01-01T00:00:00+00:00~{HUGE}"}, {"assignee": HUGE}, {"after": "x~" + "1" * 5000},
], ids=["page", "after", "after-occurrences", "before", "assignee", "5000-digits"])
def test_the_inbox_with_huge_numbers_in_its_query_still_shows_a_page(ops_user, raise_exc, query):
    raise_exc("t_ops")
    response = client_for(ops_user).get(reverse("exceptions"), query)
    assert response.status_code == 200


def test_a_nul_in_a_comment_form_post_is_a_readable_400(ops_user, raise_exc):
    record = raise_exc("t_ops")
    response = client_for(ops_user).post(reverse("exception-comment", args=[record.pk]), {"note": "a\x00b"})
    assert response.status_code == 400 and "NUL character" in response.content.decode()
    assert comments(record) == 0


def test_a_hand_edited_cursor_without_a_time_zone_pages_on_as_utc(ops_user, raise_exc):
    import warnings

    raise_exc("t_ops", n=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # Django warns about naive datetimes in queries
        response = client_for(ops_user).get("/exceptions/", {"after": "2999-01-01T00:00:00~999"})
    assert response.status_code == 200
    assert response.content.decode().count('class="exc-row') == 3  # every row is older than the cursor
