"""One exception, as its own page and as the inbox's drawer: headings, the dialog, the close
button, action buttons that show progress, human labels."""
import re

import pytest
from django.urls import reverse

from .conftest import HTMX, client_for

DRAWER = {**HTMX, "HTTP_HX_TARGET": "drawer"}


@pytest.fixture
def ops_exc(raise_exc):
    return raise_exc("t_ops", cause="D1")


def test_the_page_has_one_h1_the_exceptions_title(ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk])).content.decode()
    assert re.findall(r"<h1[ >]", body) == ["<h1 "]
    assert '<h1 class="exception-title" id="exception-heading" tabindex="-1">Depot D1 rejected the order</h1>' in body
    assert "data-drawer-close" not in body  # nothing to close on a page of its own


def test_the_drawer_gets_an_h2_a_close_button_and_remembers_it_is_a_drawer(ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk]), **DRAWER).content.decode()
    assert "<h1" not in body and "<html" not in body
    assert '<h2 class="exception-title" id="exception-heading" tabindex="-1">' in body
    assert 'data-drawer-close aria-label="Close this exception"' in body
    assert """hx-vals='{"drawer": "1"}'""" in body  # actions inside answer the drawer's panel again


def test_an_action_in_the_drawer_answers_the_drawers_panel(ops_user, ops_exc):
    response = client_for(ops_user).post(reverse("exception-comment", args=[ops_exc.pk]),
                                         {"note": "Asked the depot", "drawer": "1"}, **HTMX)
    body = response.content.decode()
    assert "<h2 class=\"exception-title\"" in body and "data-drawer-close" in body


def test_an_action_on_the_page_keeps_its_h1(ops_user, ops_exc):
    response = client_for(ops_user).post(reverse("exception-comment", args=[ops_exc.pk]), {"note": "x"}, **HTMX)
    assert "<h1 class=\"exception-title\"" in response.content.decode()


def test_the_inbox_drawer_is_a_labelled_dialog_and_the_page_has_one_h1(ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exceptions")).content.decode()
    assert '<aside id="drawer" role="dialog" aria-labelledby="exception-heading"' in body
    assert len(re.findall(r"<h1[ >]", body)) == 1
    assert 'src="/static/exceptions.js"' in body


@pytest.mark.parametrize("action", ["retry", "assign", "resolve", "ignore", "comment"])
def test_each_action_button_is_disabled_while_its_request_runs(action, ops_user, ops_exc):
    body = client_for(ops_user).get(reverse("exception-detail", args=[ops_exc.pk])).content.decode()
    form = re.search(rf'<form[^>]*hx-post="{reverse(f"exception-{action}", args=[ops_exc.pk])}"[^>]*>.*?</form>', body, re.S)
    assert form, action
    assert 'hx-disabled-elt="find button"' in form.group(0)
    assert "Working…" in form.group(0)


def test_labels_read_as_words(ops_user, raise_exc):
    record = raise_exc("t_ops", cause="D1", sku="TEE-RED-M")
    body = client_for(ops_user).get(reverse("exception-detail", args=[record.pk])).content.decode()
    assert "<span>T ops</span>" in body  # the type's code as words
    assert "· Ops ·" in body and "· ERP</p>" in body
    assert "Storefront SKU</span><span>TEE-RED-M" in body
    assert re.search(r">\s*(True|False|true|false)\s*<", body) is None


@pytest.mark.parametrize("code, label", [("unknown_sku", "Unknown SKU"), ("erp_total_mismatch", "ERP total mismatch"),
                                         ("event_stuck", "Event stuck")])
def test_type_codes_read_as_words(code, label):
    from exceptions_queue.templatetags.exceptions_tags import type_label

    assert type_label(code) == label


def test_the_inbox_filters_name_types_and_systems_in_words(ops_user, raise_exc):
    raise_exc("t_ops", cause="D1")
    body = client_for(ops_user).get(reverse("exceptions")).content.decode()
    assert '<option value="t_ops">T ops</option>' in body
    assert '<option value="erp">ERP</option>' in body
