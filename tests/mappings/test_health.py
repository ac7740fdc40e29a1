"""The health panel (the catalogue drift check's last run) and the catalogue check that raises each
finding as an owned exception; the hourly mapping health schedule it replaced is gone after an upgrade."""
import pytest
import requests_mock
from django.core.management import call_command
from django.urls import reverse
from django_q.models import Schedule

from exceptions_queue.models import ExceptionRecord
from integrations.drift.registry import check_run
from mappings.tasks import mappings_health_check, retry_health_finding
from tests.factories import DepotMappingFactory, LocationMappingFactory, SkuMappingFactory


@pytest.fixture
def world(sandbox, shopify_connection):
    """ERP: items TEE-BLK-M, MUG-1, ORPHAN-1 and depot MAIN. Shopify: DUP-1 on two products,
    NOERP-1 with no ERP item. Mappings: DUP-1 -> MUG-1, one depot and one location that are gone."""
    sandbox.shopify.reset(seed=False)
    for code in ("TEE-BLK-M", "MUG-1", "ORPHAN-1"):
        sandbox.erp.add_item(code)
    sandbox.erp.add_depot("MAIN")
    store = sandbox.shopify.add_location("Store")
    sandbox.shopify.add_product("Tee", [{"sku": "TEE-BLK-M"}, {"sku": "DUP-1"}])
    sandbox.shopify.add_product("Mug", [{"sku": "DUP-1"}])
    sandbox.shopify.add_product("Poster", [{"sku": "NOERP-1"}])
    SkuMappingFactory(connection=shopify_connection, storefront_sku="DUP-1", erp_item_code="MUG-1")
    gone_depot = DepotMappingFactory(connection=shopify_connection, country="GB", depot_code="GONE")
    LocationMappingFactory(connection=shopify_connection, storefront_location=store, erp_warehouse="MAIN")
    LocationMappingFactory(connection=shopify_connection, storefront_location="gid://shopify/Location/999", erp_warehouse="MAIN")
    return {"sandbox": sandbox, "gone_depot": gone_depot}


def _panel(client) -> str:
    """The panel as a person sees it: from the last run, with every outside call refused."""
    with requests_mock.Mocker():  # any HTTP call from the page view would raise NoMockAddress
        return client.get(reverse("mapping-health")).content.decode()


def test_health_panel_shows_every_kind_of_finding(ops_client, world):
    check_run("catalogue")
    html = _panel(ops_client)
    assert "ERP item ORPHAN-1 is sold by no storefront variant." in html
    assert "MUG-1 is sold" not in html and "TEE-BLK-M is sold" not in html
    assert "SKU NOERP-1 on shopify translates identically (no mapping row) to ERP item NOERP-1" in html
    assert "SKU DUP-1 is on 2 Shopify products" in html
    assert "points at depot GONE, which the ERP does not list" in html
    assert "points at gid://shopify/Location/999, which shopify does not have" in html
    assert "gid://shopify/Location/1," not in html  # the existing location is fine


def test_the_catalogue_check_raises_owned_exceptions_once_and_resolves_fixed_ones(world):
    check_run("catalogue")
    check_run("catalogue")  # a second run raises nothing new
    open_types = sorted(ExceptionRecord.objects.filter(status="open").values_list("type_code", "team"))
    assert open_types == sorted([
        ("duplicate_sku_products", "ecommerce"),
        ("mapping_erp_item_unsold", "ecommerce"),
        ("mapping_stale_depot", "ops"),
        ("mapping_stale_location", "ops"),
        ("mapping_variant_without_erp_item", "ecommerce"),
    ])
    assert ExceptionRecord.objects.get(type_code="duplicate_sku_products").sku == "DUP-1"

    depot = world["gone_depot"]
    depot.depot_code = "MAIN"
    depot.save()
    check_run("catalogue")
    stale = ExceptionRecord.objects.get(type_code="mapping_stale_depot")
    assert stale.status == "resolved"
    assert stale.activity.last().action == "auto_resolved"


def test_an_erp_outage_neither_breaks_the_panel_nor_resolves_erp_findings(ops_client, world):
    check_run("catalogue")
    world["sandbox"].erp.outage = True
    check_run("catalogue")
    html = _panel(ops_client)
    assert "The ERP could not be asked" in html
    assert ExceptionRecord.objects.get(type_code="mapping_stale_depot").status == "open"
    assert ExceptionRecord.objects.get(type_code="mapping_erp_item_unsold").status == "open"


def test_retrying_a_health_exception_runs_the_catalogue_check_again(world):
    from exceptions_queue.services import exception_retry

    check_run("catalogue")
    record = ExceptionRecord.objects.get(type_code="mapping_variant_without_erp_item")
    assert exception_retry(record=record) is False
    world["sandbox"].erp.outage = True
    world["sandbox"].erp.add_item("NOERP-1")
    assert exception_retry(record=record) is False  # the ERP could not be asked: not fixed as far as we know
    world["sandbox"].erp.outage = False
    assert exception_retry(record=record) is True
    record.refresh_from_db()
    assert record.status == "resolved"


def test_an_exception_the_retired_hourly_check_raised_stays_the_same_exception(world):
    from exceptions_queue.services import exception_raise
    from mappings.health import VARIANT_WITHOUT_ITEM

    # As the old mappings_health_check raised it: no retry arguments, key and cause = the finding's key.
    old = exception_raise(exc_type=VARIANT_WITHOUT_ITEM, key="shopify:NOERP-1:NOERP-1", fingerprint="shopify:NOERP-1:NOERP-1",
                          message="old", context={"sku": "NOERP-1", "connection": "shopify", "item": "NOERP-1"},
                          sku="NOERP-1")
    assert retry_health_finding(old) is False  # still there: the catalogue check found it, under the same row
    assert ExceptionRecord.objects.filter(type_code="mapping_variant_without_erp_item").count() == 1
    world["sandbox"].erp.add_item("NOERP-1")
    assert retry_health_finding(old) is True
    old.refresh_from_db()
    assert old.status == "resolved"


def test_the_retired_hourly_schedule_is_removed_on_upgrade(db):
    from importlib import import_module

    from django.apps import apps

    from config.schedules import registry, schedules_ensure

    assert "mappings.tasks.mappings_health_check" not in {s.func for s in registry()}
    Schedule.objects.create(name="mappings health check", func="mappings.tasks.mappings_health_check",
                            schedule_type=Schedule.MINUTES, minutes=60)
    import_module("integrations.migrations.0022_planner_more").remove_retired_schedules(apps, None)
    assert not Schedule.objects.filter(name="mappings health check").exists()
    Schedule.objects.create(name="mappings health check", func="mappings.tasks.mappings_health_check",
                            schedule_type=Schedule.MINUTES, minutes=60)
    schedules_ensure(owner="inventory")  # any deploy's sync removes it too
    assert not Schedule.objects.filter(name="mappings health check").exists()


def test_the_old_schedule_command_now_points_at_the_catalogue_check(db, capsys):
    Schedule.objects.create(name="mappings health check", func="mappings.tasks.mappings_health_check",
                            schedule_type=Schedule.MINUTES, minutes=60)
    call_command("mappings_schedule")
    call_command("mappings_schedule")
    assert not Schedule.objects.filter(name="mappings health check").exists()
    schedule = Schedule.objects.get(name="drift: catalogue")
    assert (schedule.func, schedule.minutes) == ("integrations.drift.tasks.catalogue", 60)
    assert "schedule 'drift: catalogue', every 60 minutes" in capsys.readouterr().out


def test_a_task_the_retired_schedule_queued_runs_the_catalogue_check(world):
    assert mappings_health_check() == "findings"
    assert ExceptionRecord.objects.filter(type_code="mapping_stale_depot", status="open").count() == 1


def test_commercetools_variants_are_checked_against_the_erp(ops_client, world, ct_connection):
    ct = world["sandbox"].commercetools
    ct.reset()
    ct.create_channel(key="main-warehouse")
    ct.add_product("Tee", ["TEE-BLK-M", "CT-ONLY-1"])
    ct.add_product("Orphan", ["ORPHAN-1"])  # now sold on commercetools
    check_run("catalogue")
    report_html = _panel(ops_client)
    assert "SKU CT-ONLY-1 on commercetools translates identically (no mapping row) to ERP item CT-ONLY-1" in report_html
    assert "ERP item ORPHAN-1 is sold by no storefront variant." not in report_html
    assert "cannot list variants" not in report_html
