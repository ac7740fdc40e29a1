"""The catalogue flow end to end against the sandbox REST ERP over HTTP, with an in-test storefront
publisher (implementing PUBLISH_PRODUCTS / BULK_PUBLISH) that keeps products by key as a storefront
would: pull by cursor, gating with an exception that lists what is missing and resolves itself,
manual release, bulk runs that resume after a crash, retirement and SKU renames."""
from __future__ import annotations

from decimal import Decimal

import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.connectors.base import TransientError
from integrations.connectors.catalogue import BULK_PUBLISH, PUBLISH_PRODUCTS, BulkStatus, PublishResult
from integrations.flows import catalogue
from integrations.flows.catalogue import publishing as publish_module
from integrations.models import CatalogItem, CatalogPublication, CatalogRun, Connection, OutboundWrite
from mappings.models import SkuMapping

pytestmark = pytest.mark.django_db


class FakeStorefront:
    """A storefront that creates or updates products by key (never a second one), hands out variant ids
    per SKU, and runs bulk jobs that complete when asked `finish_after` times."""

    capabilities = frozenset({PUBLISH_PRODUCTS, BULK_PUBLISH})

    def __init__(self):
        self.products: dict = {}  # key -> Product
        self.ids: dict = {}  # key -> product id
        self.variant_ids: dict = {}  # (key, item_id) -> variant id
        self.calls = 0
        self.bulk_started = 0
        self.jobs: dict = {}
        self.finish_after = 1
        self.fail_next: Exception | None = None

    def _put(self, product) -> PublishResult:
        created = product.key not in self.products
        self.products[product.key] = product
        self.ids.setdefault(product.key, f"P{len(self.ids) + 1}")
        ids = {}
        for v in product.variants:
            ids[v.sku] = self.variant_ids.setdefault((product.key, v.item_id), f"V{len(self.variant_ids) + 1}")
        return PublishResult(product.key, ok=True, storefront_id=self.ids[product.key], variant_ids=ids, created=created)

    def publish_products(self, products):
        self.calls += 1
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return [self._put(p) for p in products]

    def set_variant_prices(self, sku, prices):
        pass

    def bulk_publish_start(self, products):
        self.bulk_started += 1
        handle = f"gid://bulk/{self.bulk_started}"
        self.jobs[handle] = {"products": list(products), "polls": 0}
        return handle

    def bulk_publish_status(self, handle):
        job = self.jobs[handle]
        job["polls"] += 1
        done = job["polls"] >= self.finish_after
        return BulkStatus(handle, "completed" if done else "running", done_count=len(job["products"]) if done else 0)

    def bulk_publish_results(self, handle):
        return [self._put(p) for p in self.jobs[handle]["products"]]


@pytest.fixture
def erp(sandbox):
    sandbox.erp.add_depot("MAIN")
    return Connection.objects.create(code="erp-items", kind="rest_erp", name="ERP")


@pytest.fixture
def shop(db):
    return Connection.objects.create(code="shop-items", kind="shopify", name="Test shop",
                                     settings={"catalogue_publish": True, "currency": "GBP",
                                               "catalogue_required_attributes": ["size"]})


@pytest.fixture
def front(monkeypatch):
    fake = FakeStorefront()
    monkeypatch.setattr("integrations.connectors.connector_for",
                        lambda connection: fake if connection.kind == "shopify" else _real(connection))
    return fake


def _real(connection):
    from django.conf import settings

    from integrations.connectors.erp import RestErpClient

    return RestErpClient.from_settings(base_url=settings.ERP["base_url"])


def put(sandbox, code, **fields):
    base = {"name": "Tee", "product_key": "TEE", "unit_cost": "4.20", "lead_time_days": 14, "tax_code": "T1",
            "depot": "MAIN", "attributes": {"size": "M"},
            "prices": [{"currency": "GBP", "amount": "19.99", "type": "list"},
                       {"currency": "GBP", "amount": "17.50", "type": "list", "min_quantity": 5},
                       {"currency": "EUR", "amount": "22.00", "type": "list", "customer_group": "trade"}]}
    return sandbox.erp.item_master_put(code, **{**base, **fields})


def test_items_arrive_as_one_product_with_variants_and_exact_prices(sandbox, erp, shop, front):
    put(sandbox, "TEE-S", attributes={"size": "S"})
    put(sandbox, "TEE-M")
    outcome = catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert outcome["erp-items"]["changed"] == 2
    product = front.products["TEE"]
    assert [v.sku for v in product.variants] == ["TEE-M", "TEE-S"] and product.published
    prices = {(p.currency, p.min_quantity, p.customer_group): p.amount for p in product.variants[0].prices}
    assert prices == {("GBP", 1, ""): Decimal("19.99"), ("GBP", 5, ""): Decimal("17.50"),
                      ("EUR", 1, "trade"): Decimal("22.00")}
    pubs = CatalogPublication.objects.filter(connection=shop)
    assert {p.state for p in pubs} == {"live"} and all(p.storefront_variant_id for p in pubs)
    assert OutboundWrite.objects.filter(action="catalogue.publish", status="succeeded").count() == 1

    # Nothing changed in the ERP: nothing is stored again and nothing pushed.
    calls = front.calls
    again = catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert again["erp-items"]["changed"] == 0 and again["shop-items"] == {"published": 0} and front.calls == calls

    # A new price on one variant: only that product is pushed, with the new amount.
    put(sandbox, "TEE-M", prices=[{"currency": "GBP", "amount": "21.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert front.calls == calls + 1
    m = next(v for v in front.products["TEE"].variants if v.sku == "TEE-M")
    assert [p.amount for p in m.prices] == [Decimal("21.00")]
    assert len(front.products) == 1 and len(front.variant_ids) == 2


def test_an_incomplete_item_is_held_with_what_it_lacks_and_released_when_completed(sandbox, erp, shop, front):
    put(sandbox, "CAP-1", product_key="", tax_code="", lead_time_days=None, attributes={},
        prices=[{"currency": "EUR", "amount": "9.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    pub = CatalogPublication.objects.get(connection=shop, item__code="CAP-1")
    assert pub.state == "waiting"
    assert pub.missing == ["lead time", "tax code", "a price in GBP", "attribute size"]
    record = ExceptionRecord.objects.get(type_code="catalogue_item_incomplete")
    assert record.team == "ecommerce" and record.is_active
    assert "lead time, tax code, a price in GBP, attribute size" in record.title
    assert "CAP-1" not in front.products

    # Half completed: the same exception now lists only what is still missing.
    sandbox.erp.item_master_change("CAP-1", tax_code="T1", lead_time_days=10)
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    record.refresh_from_db()
    assert record.is_active and record.context["missing_list"] == ["a price in GBP", "attribute size"]
    assert ExceptionRecord.objects.filter(type_code="catalogue_item_incomplete").count() == 1

    sandbox.erp.item_master_change("CAP-1", attributes={"size": "one size"},
                                   prices=[{"currency": "GBP", "amount": "12.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    record.refresh_from_db()
    pub.refresh_from_db()
    assert not record.is_active and pub.state == "live" and "CAP-1" in front.products


def test_manual_release_keeps_ready_items_in_the_queue_until_released(sandbox, erp, shop, front, monkeypatch):
    shop.settings = {**shop.settings, "catalogue_release": "manual"}
    shop.save()
    put(sandbox, "TEE-S", attributes={"size": "S"})
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    pub = CatalogPublication.objects.get(connection=shop)
    assert pub.state == "ready" and front.products == {}

    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kw: queued.append((func, args)))
    assert catalogue.release([pub]) == {"released": 1, "held": 0}
    assert queued == [("integrations.flows.catalogue.tasks.publish_storefront", (shop.pk,))]
    from integrations.flows.catalogue.tasks import publish_storefront

    publish_storefront(shop.pk)
    pub.refresh_from_db()
    assert pub.state == "live" and "TEE" in front.products

    # Once live, a change in the ERP is pushed without another release.
    put(sandbox, "TEE-S", attributes={"size": "S"}, name="Tee (new)")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert front.products["TEE"].name == "Tee (new)"


def test_releasing_one_variant_of_a_product_releases_the_product_whole(sandbox, erp, shop, front, monkeypatch):
    shop.settings = {**shop.settings, "catalogue_release": "manual"}
    shop.save()
    for size in ("S", "M", "L"):
        put(sandbox, f"TEE-{size}", attributes={"size": size})
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: None)
    # The queue's first page held only TEE-S of the three.
    catalogue.release([CatalogPublication.objects.get(connection=shop, item__code="TEE-S")])
    catalogue.publish(shop)
    assert sorted(v.sku for v in front.products["TEE"].variants) == ["TEE-L", "TEE-M", "TEE-S"]
    assert set(CatalogPublication.objects.filter(connection=shop).values_list("state", flat=True)) == {"live"}


def test_a_bulk_run_saves_its_handle_and_resumes_after_a_crash_without_a_second_job(sandbox, erp, shop, front,
                                                                                   monkeypatch):
    for n in range(6):
        put(sandbox, f"B-{n}", product_key=f"BP-{n // 2}", attributes={"size": str(n % 2)})
    front.finish_after = 3
    catalogue.pull_and_gate(erp, [shop])
    monkeypatch.setattr(publish_module, "BULK_POLL_SECONDS", 0)
    run = catalogue.publish(shop, bulk=True, wait=0)  # the job runs on; this worker stops waiting
    assert run.kind == "bulk" and run.state == "waiting" and run.bulk_handle == "gid://bulk/1"
    assert CatalogRun.objects.get(pk=run.pk).bulk_handle == "gid://bulk/1"  # saved before waiting

    # The worker dies; the next round asks the same job rather than starting another.
    def crash(*args, **kwargs):
        raise AssertionError("a second bulk job was started")

    monkeypatch.setattr(front, "bulk_publish_start", crash)
    run = catalogue.publish(shop, wait=5)
    assert run.state == "done" and run.done == 3 and front.bulk_started == 1
    assert sorted(front.products) == ["BP-0", "BP-1", "BP-2"]
    assert CatalogPublication.objects.filter(connection=shop, state="live").count() == 6


def test_a_storefront_too_slow_to_answer_a_bulk_poll_leaves_the_job_waiting_for_the_next_round(sandbox, erp, shop,
                                                                                                front, monkeypatch):
    for n in range(4):
        put(sandbox, f"S-{n}", product_key=f"SP-{n // 2}", attributes={"size": str(n % 2)})
    catalogue.pull_and_gate(erp, [shop])
    real_status = front.bulk_publish_status

    def slow(handle):
        raise TransientError("timeout calling Shopify: Read timed out. (read timeout=10.0)")

    monkeypatch.setattr(front, "bulk_publish_status", slow)
    run = catalogue.publish(shop, bulk=True, wait=5)
    assert run.state == "waiting" and run.bulk_handle and "will retry" in run.error
    assert not ExceptionRecord.objects.filter(type_code="catalogue_publish_failed").exists()

    for _ in range(publish_module.MAX_ATTEMPTS - 1):  # round after round without an answer: someone is told
        run = catalogue.publish(shop, wait=5)
    assert run.state == "waiting"
    owned = ExceptionRecord.objects.get(type_code="catalogue_publish_failed")
    assert owned.team == "ecommerce" and "could not be read 5 rounds running" in owned.message

    monkeypatch.setattr(front, "bulk_publish_status", real_status)  # answering again: the same job is read
    run = catalogue.publish(shop, wait=5)
    assert run.state == "done" and run.done == 2 and front.bulk_started == 1


def test_batches_resume_from_the_last_one_done_and_a_retryable_failure_waits(sandbox, erp, shop, front):
    shop.settings = {**shop.settings, "catalogue_batch_size": 2}
    shop.save()
    for n in range(5):
        put(sandbox, f"K-{n}", product_key=f"KP-{n}")
    catalogue.pull_and_gate(erp, [shop])
    front.fail_next = TransientError("shop answered 503")
    run = catalogue.publish(shop, bulk=False)
    assert run.state == "running" and run.summary["next"] == 0 and "503" in run.error
    run = catalogue.publish(shop, bulk=False)
    assert run.state == "done" and run.done == 5 and sorted(front.products) == [f"KP-{n}" for n in range(5)]
    keys = list(OutboundWrite.objects.filter(action="catalogue.publish").values_list("external_reference", flat=True))
    assert len(keys) == len(set(keys)) + 1  # the failed batch was sent again under its own key, once more


def test_retired_items_are_unpublished_not_deleted(sandbox, erp, shop, front):
    put(sandbox, "OLD-1", product_key="")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    sandbox.erp.item_master_change("OLD-1", status="retired")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert front.products["OLD-1"].published is False
    assert CatalogPublication.objects.get(connection=shop).state == "retired"
    assert CatalogItem.objects.get(code="OLD-1").status == "retired"


def test_a_sku_renamed_in_the_erp_is_a_mapping_change_on_the_same_variant(sandbox, erp, shop, front):
    put(sandbox, "TEE-S", attributes={"size": "S"})
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    before = CatalogPublication.objects.get(connection=shop)
    sandbox.erp.item_master_change("TEE-S", new_code="TEE-SMALL")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    mapping = SkuMapping.objects.get(connection=shop, storefront_sku="TEE-S")
    assert mapping.erp_item_code == "TEE-SMALL"
    after = CatalogPublication.objects.get(connection=shop)
    assert after.pk == before.pk and after.storefront_variant_id == before.storefront_variant_id
    assert [v.sku for v in front.products["TEE"].variants] == ["TEE-S"] and len(front.products) == 1
    assert CatalogItem.objects.count() == 1 and CatalogItem.objects.get().code == "TEE-SMALL"
    # Renamed again: the same mapping row changes, and its history keeps each step.
    sandbox.erp.item_master_change("TEE-SMALL", new_code="TEE-XS")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    mapping.refresh_from_db()
    assert mapping.erp_item_code == "TEE-XS" and mapping.history.count() == 2
    assert catalogue.erp_prices("TEE-S", shop)[0].amount == Decimal("19.99")


def test_a_worker_killed_mid_run_is_resumed_after_its_lease_from_the_batch_it_was_in(sandbox, erp, shop, front):
    shop.settings = {**shop.settings, "catalogue_batch_size": 2}
    shop.save()
    for n in range(6):
        put(sandbox, f"W-{n}", product_key=f"WP-{n}")
    catalogue.pull_and_gate(erp, [shop])
    real = front.publish_products
    sent = []

    def dies_on_second_batch(products):
        sent.append([p.key for p in products])
        if len(sent) == 2:
            raise KeyboardInterrupt("worker killed")  # not an Exception: nothing of ours runs after it
        return real(products)

    front.publish_products = dies_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        catalogue.publish(shop, bulk=False)
    run = CatalogRun.objects.get(kind="publish")
    assert run.state == "running" and run.summary["next"] == 2 and run.done == 1 * 2

    # Another worker a moment later leaves it alone: the run is still leased to the dead one.
    assert catalogue.publish(shop, bulk=False).pk == run.pk and len(sent) == 2
    CatalogRun.objects.filter(pk=run.pk).update(summary={**run.summary, "worker_at": run.summary["worker_at"] - 600})
    run = catalogue.publish(shop, bulk=False)
    assert run.state == "done" and sent[2] == ["WP-2", "WP-3"] and len(sent) == 4
    assert sorted(front.products) == [f"WP-{n}" for n in range(6)] and len(front.ids) == 6
    assert CatalogPublication.objects.filter(connection=shop, state="live").count() == 6


def test_an_erp_that_cannot_be_read_is_an_ops_exception_and_retrying_it_reads_on_from_the_cursor(sandbox, erp, shop,
                                                                                                 front):
    from exceptions_queue.services import exception_retry

    put(sandbox, "TEE-S", attributes={"size": "S"})
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    put(sandbox, "TEE-M")
    sandbox.erp.outage = True
    outcome = catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    assert "error" in outcome["erp-items"]
    record = ExceptionRecord.objects.get(type_code="catalogue_pull_failed")
    assert record.team == "ops" and record.is_active and "503" in record.last_error
    assert CatalogItem.objects.count() == 1

    sandbox.erp.outage = False
    assert exception_retry(record=record) is True
    record.refresh_from_db()
    assert not record.is_active and CatalogItem.objects.count() == 2
    assert CatalogRun.objects.filter(kind="pull", state="done").last().total == 1  # only the change since the cursor


def test_retrying_a_held_item_gates_it_again_after_the_storefront_stopped_requiring_the_attribute(sandbox, erp, shop,
                                                                                                front):
    from exceptions_queue.services import exception_retry

    put(sandbox, "BAG-1", product_key="", attributes={})
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    record = ExceptionRecord.objects.get(type_code="catalogue_item_incomplete")
    assert record.context["missing_list"] == ["attribute size"]
    assert exception_retry(record=record) is False  # nothing changed: still held

    shop.settings = {**shop.settings, "catalogue_required_attributes": []}
    shop.save()
    assert exception_retry(record=record) is True
    assert CatalogPublication.objects.get(connection=shop).state == "live" and "BAG-1" in front.products


def test_a_prima_item_master_goes_the_same_way(sandbox, shop, monkeypatch):
    from integrations.connectors.prima import PrimaClient

    fake = FakeStorefront()
    monkeypatch.setattr("integrations.connectors.connector_for",
                        lambda connection: fake if connection.kind == "shopify" else PrimaClient.from_settings())
    prima = Connection.objects.create(code="prima-items", kind="prima", name="Prima")
    sandbox.prima.item_master_put("TEE-S", **{"name": "Tee", "product_key": "TEE", "unit_cost": "4.20",
                                              "lead_time_days": 14, "tax_code": "T1", "depot": "MAIN",
                                              "attributes": {"size": "S"},
                                              "prices": [{"currency": "GBP", "amount": "19.99"},
                                                         {"currency": "GBP", "amount": "17.00", "min_quantity": 6}]})
    sandbox.prima.item_master_put("CAP-1", name="Cap", unit_cost="2.00", depot="MAIN", attributes={"size": "one"},
                                  prices=[{"currency": "GBP", "amount": "9.00"}])
    catalogue.catalogue_sync(erp_connection=prima, storefronts=[shop])
    assert [(p.amount, p.min_quantity) for p in fake.products["TEE"].variants[0].prices] == [
        (Decimal("19.99"), 1), (Decimal("17.00"), 6)]
    assert CatalogPublication.objects.get(item__code="CAP-1").missing == ["lead time", "tax code"]


def test_a_refused_product_is_an_owned_exception_and_retrying_it_publishes_once_fixed(sandbox, erp, shop, front):
    from exceptions_queue.services import exception_retry

    put(sandbox, "TEE-S", attributes={"size": "S"})
    put(sandbox, "MUG-1", product_key="")
    real = front.publish_products

    def refuses_tee(products):
        return [PublishResult(p.key, ok=False, error="Handle has already been taken") if p.key == "TEE"
                else real([p])[0] for p in products]

    front.publish_products = refuses_tee
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    tee = CatalogPublication.objects.get(item__code="TEE-S")
    assert tee.state == "failed" and tee.last_error == "Handle has already been taken"
    assert CatalogPublication.objects.get(item__code="MUG-1").state == "live"  # the others went through
    record = ExceptionRecord.objects.get(type_code="catalogue_publish_failed")
    assert record.team == "ecommerce" and "TEE" in record.title and "already been taken" in record.message

    front.publish_products = real  # fixed on the storefront's side
    assert exception_retry(record=record) is True
    tee.refresh_from_db()
    assert tee.state == "live" and "TEE" in front.products


def test_a_failed_bulk_job_leaves_the_items_to_push_again_and_says_why(sandbox, erp, shop, front, monkeypatch):
    for n in range(3):
        put(sandbox, f"F-{n}", product_key=f"FP-{n}")
    catalogue.pull_and_gate(erp, [shop])
    front.bulk_publish_status = lambda handle: BulkStatus(handle, "failed", error="ACCESS_DENIED")
    run = catalogue.publish(shop, bulk=True, wait=1)
    assert run.state == "failed" and "ACCESS_DENIED" in run.error and run.failed == 3
    assert set(CatalogPublication.objects.values_list("state", flat=True)) == {"ready"}
    del front.bulk_publish_status  # the shop answers again
    run = catalogue.publish(shop, bulk=True, wait=1)
    assert run.state == "done" and run.done == 3 and front.bulk_started == 2 and len(front.products) == 3


def test_a_live_variant_made_incomplete_is_sent_as_it_was_when_its_product_is_pushed(sandbox, erp, shop, front):
    put(sandbox, "TEE-S", attributes={"size": "S"})
    put(sandbox, "TEE-M")
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    # TEE-S loses its GBP price in the ERP (held back), while TEE-M is repriced (pushed).
    sandbox.erp.item_master_change("TEE-S", prices=[{"currency": "EUR", "amount": "9.00", "type": "list"}])
    sandbox.erp.item_master_change("TEE-M", prices=[{"currency": "GBP", "amount": "23.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    held = CatalogPublication.objects.get(connection=shop, item__code="TEE-S")
    assert held.state == "waiting" and held.missing == ["a price in GBP"]
    variants = {v.sku: v for v in front.products["TEE"].variants}
    assert [p.amount for p in variants["TEE-M"].prices] == [Decimal("23.00")]
    # Still on sale at the price last pushed, not with the ERP's incomplete change.
    assert {(p.currency, p.amount) for p in variants["TEE-S"].prices} == {
        ("GBP", Decimal("19.99")), ("GBP", Decimal("17.50")), ("EUR", Decimal("22.00"))}

    # Completed in the ERP: it is pushed with its new data and goes live again.
    sandbox.erp.item_master_change("TEE-S", prices=[{"currency": "GBP", "amount": "18.00", "type": "list"}])
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    held.refresh_from_db()
    variants = {v.sku: v for v in front.products["TEE"].variants}
    assert held.state == "live" and [p.amount for p in variants["TEE-S"].prices] == [Decimal("18.00")]
    assert held.pushed_data["prices"][0]["amount"] == "18.00"


def test_skus_the_storefront_groups_otherwise_are_an_ecommerce_exception_until_regrouped(sandbox, erp, shop, front):
    put(sandbox, "TEE-S", attributes={"size": "S"})
    refusal = "TEE-S is on storefront product 'classic-tee' (gid://shopify/Product/9) beside TEE-XL"
    real_put = front._put
    front._put = lambda product: PublishResult(product.key, ok=False, conflict=True, error=refusal)
    catalogue.catalogue_sync(erp_connection=erp, storefronts=[shop])
    pub = CatalogPublication.objects.get(connection=shop, item__code="TEE-S")
    record = ExceptionRecord.objects.get(type_code="catalogue_grouping_conflict")
    assert pub.state == "failed" and record.team == "ecommerce" and refusal in record.message
    assert not ExceptionRecord.objects.filter(type_code="catalogue_publish_failed").exists()
    assert "TEE" not in front.products

    front._put = real_put  # regrouped in the storefront: retrying adopts or creates it, and it resolves
    from exceptions_queue.services import exception_retry

    exception_retry(record=record)
    record.refresh_from_db()
    pub.refresh_from_db()
    assert not record.is_active and pub.state == "live" and "TEE" in front.products
