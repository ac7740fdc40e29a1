"""Advanced CSV over SFTP: incremental files uploaded atomically to a real SFTP server on loopback
and read by the planner sandbox; exactly what changed goes out (REMOVED for what went away); a
failed upload is retried, then an ops exception whose retry sends the same files."""
import pytest

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_retry
from integrations.flows.planner_feeds import planner_feeds_refresh, planner_increment_run
from integrations.models import OutboundWrite
from integrations.sandbox.inventory_planner_feeds import import_feeds, imported

from .conftest import sftp_body

pytestmark = pytest.mark.django_db


def upload(world, **kw):
    planner_feeds_refresh()
    return planner_increment_run(connection=world.planner, sleep=lambda s: None, **kw)


def by(rows, key):
    return {row[key]: row for row in rows}


def test_rich_rows_reach_the_planner_over_sftp(advanced, sftp_server, planner_app):
    run = upload(advanced)
    assert run.status == "succeeded", run.errors
    result = import_feeds(planner_app, sftp_body(sftp_server))["sftp"]
    # The planner read the catalogue and warehouses before the sales that refer to them.
    kinds = [f["kind"] for f in result["files"]]
    assert kinds == ["warehouses", "vendors", "variants", "variant_warehouses", "variant_vendors", "sales_orders"]
    assert all("error" not in f for f in result["files"]), result["files"]
    state = imported(planner_app)["advanced"]
    assert [w["WAREHOUSE_ID"] for w in state["warehouses"]] == ["MAIN"]
    assert by(state["variant_warehouses"], "VARIANT_ID")["TEE-BLK-M"]["IN_STOCK"] == "29"  # 40-3-1-2-5, one pool
    assert by(state["variant_vendors"], "VARIANT_ID")["TEE-BLK-M"]["COST_PRICE"] == "6.40"
    sales = state["sales_orders"]
    tee = [r for r in sales if r["VARIANT_ID"] == "TEE-BLK-M" and r["ID"] == f"shopify:{advanced.uk_order['id']}"]
    assert sorted(int(r["QUANTITY"]) for r in tee) == [-1, 1, 2]  # sold 2, the kit's one, one returned
    sold = next(r for r in tee if r["QUANTITY"] == "2")
    assert (sold["PRICE"], sold["DISCOUNT"], sold["CURRENCY"], sold["WAREHOUSE"]) == ("20.00", "4.00", "GBP", "MAIN")
    assert sold["REFERENCE"] == "#1043"
    assert sold["REFERENCE2"] == ("channel=shopify;location=gid://shopify/Location/1001;country=GB;region=ENG;"
                                  "codes=SUMMER10;tags=newsletter, summer-sale")
    mugs = [r for r in sales if r["VARIANT_ID"] == "MUG-001"]
    # the kit is sent as its components (two mugs per kit), the EU channel's mugs in the same warehouse
    assert sorted((r["ID"].split(":")[0], r["QUANTITY"], r["PRICE"]) for r in mugs) == [
        ("shopify", "2", "10.00"), ("shopify-eu", "3", "12.00")]
    assert "GIFT-SET" not in {r["VARIANT_ID"] for r in sales}
    assert not any(f["unknown_skus"] for f in result["files"] if "unknown_skus" in f)
    # atomic: written under a temporary name and renamed; nothing half-written is left
    assert len(sftp_server.renames) == 6
    assert all(name.startswith("sales_orders_") for name in sftp_server.files("inbound/sales_orders"))
    assert OutboundWrite.objects.filter(action="planner_feed_upload", status="succeeded").count() == 6


def test_increment_sends_exactly_what_changed_and_removed_rows(advanced, sftp_server, planner_app):
    assert upload(advanced).status == "succeeded"
    import_feeds(planner_app, sftp_body(sftp_server))
    # The EU order is cancelled after posting; one stock figure changes; nothing else does.
    link = advanced.eu_link
    link.state = "cancelled"
    link.save()
    advanced.erp.set_stock("MUG-001", "MAIN", on_hand=9)
    second = upload(advanced)
    assert second.status == "succeeded", second.errors
    assert {f["kind"]: f["rows"] for f in second.files} == {"variant_warehouses": 1, "sales_orders": 1}
    result = import_feeds(planner_app, sftp_body(sftp_server))["sftp"]
    assert [(f["kind"], f["rows"], f["removed"]) for f in result["files"]] == [
        ("variant_warehouses", 1, 0), ("sales_orders", 1, 1)]
    state = imported(planner_app)["advanced"]
    eu = [r for r in state["sales_orders"] if r["ID"].startswith("shopify-eu:")]
    assert [r["REMOVED"] for r in eu] == ["true"]
    assert by(state["variant_warehouses"], "VARIANT_ID")["MUG-001"]["IN_STOCK"] == "9"
    # and a third run with no change sends no file at all
    third = upload(advanced)
    assert third.status == "succeeded" and third.files == []


def test_a_failed_upload_is_retried_then_an_ops_exception_whose_retry_sends_the_files(advanced, sftp_server,
                                                                                       planner_app):
    sftp_server.fail_uploads = 100
    run = upload(advanced)
    assert run.status == "failed" and run.attempts == 3
    assert len(run.errors) == 3 and "permission" in run.errors[-1].lower()
    record = ExceptionRecord.objects.get(type_code="planner_feed_failed")
    assert record.team == "ops" and record.status == "open"
    assert sftp_server.files("inbound/sales_orders") == []

    sftp_server.fail_uploads = 0
    assert exception_retry(record=record) is True
    record.refresh_from_db()
    run.refresh_from_db()
    assert record.status == "resolved" and run.status == "succeeded"
    assert len(sftp_server.files("inbound/sales_orders")) == 1
    result = import_feeds(planner_app, sftp_body(sftp_server))["sftp"]
    assert result["sales_orders"]["rows"] == 5


def test_files_uploaded_before_a_failure_are_not_sent_again(advanced, sftp_server):
    sftp_server.allow_uploads = 3  # the warehouses, vendors and variants files go, then the server refuses
    run = upload(advanced)
    assert run.status == "failed"
    assert [f["sent"] for f in run.files] == [True, True, True, False, False, False]
    sftp_server.allow_uploads = None
    record = ExceptionRecord.objects.get(type_code="planner_feed_failed")
    assert exception_retry(record=record) is True
    run.refresh_from_db()
    assert run.status == "succeeded" and all(f["sent"] for f in run.files)
    assert len(sftp_server.renames) == 6  # each file once
    assert OutboundWrite.objects.filter(action="planner_feed_upload", status="succeeded").count() == 6


def test_a_server_with_another_host_key_gets_nothing_and_is_not_retried(advanced, sftp_server):
    import paramiko

    planner = advanced.planner
    other = paramiko.ECDSAKey.generate()
    planner.settings = {**planner.settings, "sftp_host_key": f"{other.get_name()} {other.get_base64()}"}
    planner.save()
    run = upload(advanced)
    assert run.status == "failed" and run.attempts == 1
    assert "host key" in run.errors[-1]
    assert sftp_server.files("inbound") == []
    assert ExceptionRecord.objects.filter(type_code="planner_feed_failed", status="open").exists()


def test_the_schedule_uploads_at_night_once_and_never_in_peak_hours(advanced, sftp_server, settings):
    from datetime import timedelta

    from django.utils import timezone

    from integrations.flows.planner_feeds import planner_feeds_scheduled
    from integrations.models.planner_feeds import FeedRun

    settings.PLANNER_FEEDS = {**settings.PLANNER_FEEDS, "quiet_hours": "11-14,18-21"}
    today = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    assert "planner" not in planner_feeds_scheduled(now=today.replace(hour=12), sleep=lambda s: None)  # peak
    assert "planner" not in planner_feeds_scheduled(now=today.replace(hour=9), sleep=lambda s: None)  # not night
    assert sftp_server.files("inbound") == []
    night = today.replace(hour=2) + timedelta(days=1)
    assert planner_feeds_scheduled(now=night, sleep=lambda s: None)["planner"] == "succeeded"
    FeedRun.objects.filter(kind="incremental").update(created_at=night)
    assert "planner" not in planner_feeds_scheduled(now=night + timedelta(hours=1), sleep=lambda s: None)  # done
    assert len(sftp_server.files("inbound/sales_orders")) == 1
    assert planner_feeds_scheduled(now=night + timedelta(days=1), sleep=lambda s: None)["planner"] == "succeeded"
