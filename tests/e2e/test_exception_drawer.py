"""The exception inbox in real Chromium: the drawer by keyboard, Back after filtering and opening a
row, a bulk retry over rows of two teams that says what it did and what it refused, and the
screens at a phone's width."""
import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from exceptions_queue import registry
from exceptions_queue.models import BulkJob, ExceptionRecord
from exceptions_queue.services import exception_raise
from tests.exceptions_queue.conftest import FIXED, TYPES
from tests.factories import ExceptionRecordFactory, UserFactory


@pytest.fixture
def q_sync(settings, monkeypatch):
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 reads the setting once, at import


@pytest.fixture
def test_types():
    for exc_type in TYPES.values():
        registry.register(exc_type)
    FIXED.clear()
    yield TYPES
    FIXED.clear()
    for code in TYPES:
        registry.unregister(code)


def _raise(code, n, cause):
    return [exception_raise(exc_type=TYPES[code], key=f"{code}:{cause}:{i}", fingerprint=cause,
                            message=f"{code} failed for {cause}",
                            context={"depot": cause, "payout": cause, "sku": cause}) for i in range(n)]


def _active_id(page) -> str:
    return page.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.textContent.trim())")


def test_the_drawer_takes_focus_closes_on_escape_and_gives_focus_back(transactional_db, live_server, page, sign_in):
    first = ExceptionRecordFactory(team="ops", title="SKU TEE-RED-M has no ERP item")
    ExceptionRecordFactory(team="ops", title="SKU MUG-RED has no ERP item", sku="MUG-RED",
                           fingerprint="unknown_sku:MUG-RED")
    sign_in(UserFactory(username="olivia-ops", roles=["ops"]))
    page.goto("/exceptions/")
    drawer = page.locator("#drawer")
    link = page.get_by_role("link", name="SKU TEE-RED-M has no ERP item")

    link.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="SKU TEE-RED-M has no ERP item")
    expect(dialog).to_be_visible()
    page.wait_for_url(f"**/exceptions/{first.pk}/")
    expect(page.locator("#drawer #exception-heading")).to_be_focused()

    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(link).to_be_focused()
    assert page.url.endswith("/exceptions/")  # the address names what is on the screen again

    other = page.get_by_role("link", name="SKU MUG-RED has no ERP item")
    other.click()
    expect(page.locator("#drawer #exception-heading")).to_be_focused()
    page.get_by_role("button", name="Close this exception").click()
    expect(drawer).to_be_hidden()
    expect(other).to_be_focused()


def test_an_action_button_is_disabled_and_says_working_while_its_request_runs(transactional_db, live_server, page,
                                                                              sign_in):
    ExceptionRecordFactory(team="ops", title="SKU TEE-RED-M has no ERP item")
    sign_in(UserFactory(username="olivia-ops", roles=["ops"]))
    page.goto("/exceptions/")
    page.get_by_role("link", name="SKU TEE-RED-M has no ERP item").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Comment").fill("Asked the depot")

    busy = page.evaluate("""() => {
        const button = [...document.querySelectorAll('#drawer button')].find(b => b.textContent.trim() === 'Comment');
        button.click();  // htmx sends the request and marks the form busy before this returns
        const working = button.form.querySelector('.working');
        return {disabled: button.disabled, working: getComputedStyle(working).display !== 'none' && working.textContent};
    }""")

    assert busy == {"disabled": True, "working": "Working…"}
    expect(dialog.locator("#exception-timeline")).to_contain_text("olivia-ops · commented: Asked the depot")
    expect(dialog.get_by_role("button", name="Comment")).to_be_enabled()
    expect(dialog.get_by_role("button", name="Close this exception")).to_be_visible()  # still the drawer's panel
    expect(dialog.locator("#exception-heading")).to_be_focused()  # the keyboard stays in the drawer


def test_back_after_filtering_and_opening_a_row_shows_the_styled_filtered_inbox(transactional_db, live_server, page,
                                                                                sign_in):
    high = ExceptionRecordFactory(team="ops", severity="high", title="SKU TEE-RED-M has no ERP item")
    ExceptionRecordFactory(team="ops", severity="low", title="SKU MUG-RED has no ERP item", sku="MUG-RED",
                           fingerprint="unknown_sku:MUG-RED")
    sign_in(UserFactory(username="olivia-ops", roles=["ops"]))
    page.goto("/exceptions/")
    results = page.locator("#results")
    expect(results).to_contain_text("SKU MUG-RED has no ERP item")

    page.select_option("select[name=severity]", "high")
    page.wait_for_url("**severity=high**")
    expect(results).not_to_contain_text("SKU MUG-RED has no ERP item")
    page.get_by_role("link", name="SKU TEE-RED-M has no ERP item").click()
    page.wait_for_url(f"**/exceptions/{high.pk}/")
    expect(page.get_by_role("dialog")).to_contain_text("Seen once")

    page.go_back()
    page.wait_for_url("**/exceptions/?*severity=high*")
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Exceptions")
    expect(page.locator("select[name=severity]")).to_have_value("high")
    expect(results).to_contain_text("SKU TEE-RED-M has no ERP item")
    expect(results).not_to_contain_text("SKU MUG-RED has no ERP item")
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # the stylesheet is applied

    page.go_forward()  # the exception's address again: styled, with the exception on screen
    page.wait_for_url(f"**/exceptions/{high.pk}/")
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.locator("#exception-heading")).to_have_text("SKU TEE-RED-M has no ERP item")
    expect(page.get_by_role("heading", level=1)).to_have_count(1)


def test_a_bulk_retry_over_two_teams_reports_what_it_did_and_what_it_refused(transactional_db, live_server, page,
                                                                            sign_in, test_types, q_sync):
    ops_rows = _raise("t_ops", 2, "D1")
    finance_row, = _raise("t_finance", 1, "P1")
    ecommerce_row, = _raise("t_ecommerce", 1, "S1")
    FIXED.update({"t_ops:D1", "t_finance:P1"})
    user = UserFactory(username="olivia-ops", roles=["ops", "finance"])

    sign_in(user)
    page.goto("/exceptions/?team=")
    expect(page.locator(f"#exc-{ecommerce_row.pk} input[type=checkbox]")).to_be_disabled()  # not her team
    page.get_by_label("Select all you can act on").check()
    for record in (*ops_rows, finance_row):
        expect(page.locator(f"#exc-{record.pk} input[name=ids]")).to_be_checked()

    Group.objects.get(name="finance").user_set.remove(user)  # she leaves finance while the page is open
    page.locator(".bulkbar").get_by_role("button", name="Retry").click()

    status = page.locator("#bulk-status")
    expect(status).to_contain_text("Retry finished: 2 resolved · 1 refused: owned by finance")
    statuses = dict(ExceptionRecord.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in ops_rows] == ["resolved", "resolved"]
    assert statuses[finance_row.pk] == statuses[ecommerce_row.pk] == "open"
    assert BulkJob.objects.get().created_by == user

    # the list refreshed itself; the timeline of a retried row names her, not Ledgerline
    page.goto(f"/exceptions/{ops_rows[0].pk}/")
    expect(page.locator("#exception-timeline")).to_contain_text("olivia-ops · retried")


def test_the_exception_screens_fit_a_phone(transactional_db, live_server, browser, sign_in, page, test_types, q_sync):
    records = _raise("t_ops", 3, "D1-" + "VERY-LONG-DEPOT-CODE-WITHOUT-SPACES" * 2)
    sign_in(UserFactory(username="olivia-ops", roles=["ops"]))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/exceptions/")
    page.get_by_label("Select all you can act on").check()
    page.locator("#bulk-form").get_by_role("button", name="Retry").click()
    expect(page.locator("#bulk-status")).to_contain_text("Retry finished")
    job = BulkJob.objects.get()

    for path in ("/exceptions/", "/exceptions/?view=groups", f"/exceptions/{records[0].pk}/",
                 f"/exceptions/group/?fingerprint={records[0].fingerprint}", f"/exceptions/jobs/{job.pk}/"):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide at a 390px viewport"

    page.goto("/exceptions/")
    page.get_by_role("link", name=records[1].title).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_opening_a_row_in_the_drawer_logs_no_browser_error(transactional_db, live_server, page, sign_in):
    ExceptionRecordFactory(team="ops", title="SKU TEE-RED-M has no ERP item")
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(UserFactory(username="olivia-ops", roles=["ops"]))
    page.goto("/exceptions/")
    expect(page.locator(".bulkbar button").first).to_be_attached()  # the bulk form's buttons are there
    page.get_by_role("link", name="SKU TEE-RED-M has no ERP item").click()
    expect(page.get_by_role("dialog", name="SKU TEE-RED-M has no ERP item")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#drawer [role=dialog]")).to_have_count(0)
    assert errors == []
