from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_resolve
from tests.factories import OrderLinkFactory

from .conftest import HTMX, client_for

URL = reverse("exceptions")


def test_inbox_opens_on_my_teams_open_exceptions(ops_user, raise_exc):
    mine = raise_exc("t_ops", cause="D1")
    theirs = raise_exc("t_finance", cause="P1")
    closed = raise_exc("t_ops", cause="D2")
    exception_resolve(record=closed, note="fixed")

    body = client_for(ops_user).get(URL).content.decode()

    assert mine.title in body
    assert theirs.title not in body
    assert closed.title not in body


def test_admin_inbox_shows_every_team(admin_user, raise_exc):
    ops, fin = raise_exc("t_ops", cause="D1"), raise_exc("t_finance", cause="P1")
    body = client_for(admin_user).get(URL).content.decode()
    assert ops.title in body and fin.title in body


def test_reader_without_team_sees_all_but_no_bulk_actions(outsider, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    body = client_for(outsider).get(URL).content.decode()
    assert rec.title in body
    assert 'name="ids"' not in body


def test_filters_by_type_sku_and_order_number(admin_user, raise_exc):
    order = OrderLinkFactory(order_number="#7731")
    by_order = raise_exc("t_ops", cause="D1", order=order)
    by_sku = raise_exc("t_ecommerce", cause="S1", sku="TEE-RED-M")
    other = raise_exc("t_finance", cause="P1")
    client = client_for(admin_user)

    body = client.get(URL, {"q": "7731"}).content.decode()
    assert by_order.title in body and by_sku.title not in body

    body = client.get(URL, {"q": "tee-red"}).content.decode()
    assert by_sku.title in body and by_order.title not in body

    body = client.get(URL, {"type": "t_finance"}).content.decode()
    assert other.title in body and by_order.title not in body


def test_overdue_filter_and_mark(admin_user, raise_exc):
    late = raise_exc("t_ops", cause="LATE")
    ExceptionRecord.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=5))
    fresh = raise_exc("t_ops", cause="FRESH")

    body = client_for(admin_user).get(URL, {"overdue": "true"}).content.decode()

    assert late.title in body and fresh.title not in body
    assert "Overdue" in body


def test_assignee_filter_me(ops_user, raise_exc):
    mine, other = raise_exc("t_ops", cause="D1"), raise_exc("t_ops", cause="D2")
    ExceptionRecord.objects.filter(pk=mine.pk).update(assignee=ops_user, status="in_progress")
    body = client_for(ops_user).get(URL, {"assignee": "me"}).content.decode()
    assert mine.title in body and other.title not in body


def test_pages_follow_the_cursor_without_repeating_rows(ops_user, raise_exc):
    records = raise_exc("t_ops", n=55, cause="D1")
    ExceptionRecord.objects.filter(pk__in=[r.pk for r in records]).update(title="same")
    for i, r in enumerate(records):  # distinct last_seen, newest = last raised
        ExceptionRecord.objects.filter(pk=r.pk).update(title=f"Row {i:03d}", last_seen=timezone.now() - timedelta(minutes=100 - i))
    client = client_for(ops_user)

    first = client.get(URL)
    rows1 = first.context["page"].rows
    assert [r.title for r in rows1[:2]] == ["Row 054", "Row 053"]
    assert len(rows1) == 50 and first.context["page"].has_next

    second = client.get(URL, {"after": first.context["page"].next_cursor})
    rows2 = second.context["page"].rows
    assert [r.title for r in rows2] == ["Row 004", "Row 003", "Row 002", "Row 001", "Row 000"]
    assert not second.context["page"].has_next

    back = client.get(URL, {"before": second.context["page"].prev_cursor})
    assert [r.title for r in back.context["page"].rows] == [r.title for r in rows1]


def test_sort_by_most_frequent(admin_user, raise_exc):
    rare = raise_exc("t_ops", cause="RARE")
    raise_exc("t_ops", cause="OFTEN")
    often = raise_exc("t_ops", cause="OFTEN")
    ExceptionRecord.objects.filter(pk=often.pk).update(occurrences=9)
    rows = client_for(admin_user).get(URL, {"sort": "-occurrences"}).context["page"].rows
    assert rows[0].pk == often.pk and rows[-1].pk == rare.pk


def test_sidebar_counts_open_exceptions_per_type(admin_user, raise_exc):
    raise_exc("t_ops", n=3, cause="D1")
    raise_exc("t_finance", cause="P1")
    counts = client_for(admin_user).get(URL).context["type_counts"]
    assert [(code, n) for code, _, n in counts] == [("t_ops", 3), ("t_finance", 1)]


def test_groups_view_counts_each_cause_and_orders(admin_user, raise_exc):
    for _ in range(3):
        raise_exc("t_ops", cause="D1", order=OrderLinkFactory())
    raise_exc("t_ops", cause="D2")
    groups = client_for(admin_user).get(URL, {"view": "groups"}).context["groups"]
    assert [(g["fingerprint"], g["n"], g["orders"]) for g in groups] == [("t_ops:D1", 3, 3), ("t_ops:D2", 1, 0)]


def test_empty_inbox_says_all_clear(ops_user):
    body = client_for(ops_user).get(URL).content.decode()
    assert "All clear." in body


def test_htmx_request_gets_the_results_fragment(ops_user, raise_exc):
    rec = raise_exc("t_ops", cause="D1")
    response = client_for(ops_user).get(URL, {"type": "t_ops"}, **HTMX)
    body = response.content.decode()
    assert rec.title in body
    assert 'id="results"' in body and "<html" not in body


def test_history_restore_gets_the_whole_page(ops_user, raise_exc):
    response = client_for(ops_user).get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_inbox_rejects_post(ops_user):
    assert client_for(ops_user).post(URL).status_code == 405


@pytest.mark.django_db
def test_inbox_redirects_signed_out_visitors_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
