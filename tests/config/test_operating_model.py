"""The operating model page, generated from the registries: every registered exception type with its
owning team, runbook and escalation contact; the drift checks and schedules; each team's checks linked
to their screens; printable, and exported as Markdown; it changes when a type is registered."""
from datetime import timedelta

import pytest

from config.schedules import registry as schedule_registry
from exceptions_queue import registry
from exceptions_queue.registry import ExceptionType, Severity, Team
from integrations.drift.registry import all_checks

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(client, ops_user):
    client.force_login(ops_user)
    return lambda query="": client.get(f"/operating-model/{query}")


@pytest.fixture
def new_type():
    exc_type = ExceptionType(
        code="zz_payout_fee_unexplained", team=Team.FINANCE, severity=Severity.MEDIUM, system="erp",
        title="Payout {payout} has a fee nobody explained",
        runbook="What happened: a fee.\nFix: book it.\nEscalate: the treasury desk.", sla=timedelta(hours=48))
    registry.register(exc_type)
    yield exc_type
    registry.unregister(exc_type.code)


def test_it_lists_every_registered_exception_type_with_its_owner(page):
    html = page().content.decode()
    types = registry.all_types()
    assert len(types) > 20
    for exc_type in types:
        assert f'data-type="{exc_type.code}" data-team="{exc_type.team}"' in html, exc_type.code


def test_it_changes_when_a_type_is_registered(page, settings):
    settings.ESCALATION_CONTACTS = {**settings.ESCALATION_CONTACTS, "finance": "cfo-office@example.com"}
    assert "zz_payout_fee_unexplained" not in page().content.decode()
    registry.register(ExceptionType(
        code="zz_payout_fee_unexplained", team=Team.FINANCE, severity=Severity.MEDIUM, system="erp",
        title="Payout {payout} has a fee nobody explained",
        runbook="What happened: a fee.\nFix: book it.\nEscalate: the treasury desk.", sla=timedelta(hours=48)))
    try:
        html = page().content.decode()
    finally:
        registry.unregister("zz_payout_fee_unexplained")
    row = html.split('data-type="zz_payout_fee_unexplained" data-team="finance"', 1)[1].split("</tr>", 1)[0]
    assert "the treasury desk." in row and "2 days" in row and "medium" in row
    finance = html.split('id="team-finance"', 1)[1].split("</table>", 1)[0]
    assert "cfo-office@example.com" in finance and "zz_payout_fee_unexplained" in finance


def test_a_type_that_is_gone_is_gone_from_the_page(page, new_type):
    assert "zz_payout_fee_unexplained" in page().content.decode()
    registry.unregister(new_type.code)
    assert "zz_payout_fee_unexplained" not in page().content.decode()


def test_it_lists_the_drift_checks_and_the_schedules(page):
    html = page().content.decode()
    for check in all_checks():
        assert f'data-check="{check.code}"' in html and check.label in html
    for spec in schedule_registry():
        assert spec.name in html


def test_each_team_check_links_to_its_screen(page):
    html = page().content.decode()
    ops = html.split('id="checks-ops"', 1)[1].split('id="checks-', 1)[0]
    assert '<a href="/exceptions/?team=ops&amp;status=active">Clear the ops exception queue' in ops
    assert '<a href="/orders/?state=failed">' in ops
    assert "Daily" in ops and "Weekly" in ops and "Month-end" in ops


def test_who_owns_what_names_each_object_and_its_system_of_record(page):
    table = page().content.decode().split('id="ownership"', 1)[1].split("</table>", 1)[0]
    for obj, owner in [("Orders", "Storefront"), ("Stock", "ERP"), ("Prices", "ERP"), ("Dispatch", "ERP"),
                       ("Payouts", "Payment provider"), ("Demand", "Inventory Planner")]:
        row = next(r for r in table.split("<tr>") if f'<th scope="row">{obj}' in r)
        assert owner in row


def test_it_exports_markdown(page, new_type):
    response = page("?format=md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# Operating model")
    assert "| [zz_payout_fee_unexplained](http://testserver/exceptions/?type=zz_payout_fee_unexplained&status=active)" \
           " | medium | 2 days | erp | no | the treasury desk. |" in text
    for exc_type in registry.all_types():
        assert f"[{exc_type.code}]" in text
    assert "- **Daily**: [Clear the ops exception queue" in text


def test_it_prints_without_the_menu(page):
    html = page().content.decode()
    assert "@media print" in html and ".topbar" in html.split("@media print", 1)[1]


def test_it_rejects_post(client, ops_user):
    client.force_login(ops_user)
    assert client.post("/operating-model/").status_code == 405


def test_it_sends_a_stranger_to_sign_in(client):
    response = client.get("/operating-model/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
