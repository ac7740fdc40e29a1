"""Fragment or page: every list answers the whole page to a plain visit and a history restore, the
fragment to an HTMX swap, and says it varies on HX-Request."""
import pytest

pytestmark = pytest.mark.django_db

LISTS = ["/orders/", "/exceptions/", "/inventory/", "/mappings/skus/"]


@pytest.mark.parametrize("url", LISTS)
def test_a_list_is_a_page_a_fragment_or_a_page_again_after_back(client, ops_user, url):
    client.force_login(ops_user)
    page = client.get(url)
    fragment = client.get(url, headers={"HX-Request": "true"})
    restored = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert page.status_code == fragment.status_code == restored.status_code == 200
    assert b"<html" in page.content and b"<html" in restored.content and b"<html" not in fragment.content
    for response in (page, fragment, restored):
        assert "HX-Request" in response["Vary"]


def test_role_required_says_who_may(client, finance_user, shopify_connection):
    from tests.factories import OrderLinkFactory

    order = OrderLinkFactory(connection=shopify_connection)
    client.force_login(finance_user)
    response = client.post(f"/orders/{order.pk}/retry/")
    assert response.status_code == 403


def test_one_registry_creates_every_schedule_once_and_twice_changes_nothing():
    from django.core.management import call_command
    from django_q.models import Schedule

    from config.schedules import registry

    call_command("ledgerline_schedules", verbosity=0)
    call_command("ledgerline_schedules", verbosity=0)
    names = list(Schedule.objects.values_list("name", flat=True))
    assert sorted(names) == sorted(spec.name for spec in registry())
    assert Schedule.objects.get(name="orders-sweep").func == "integrations.tasks.sweep_orders"
