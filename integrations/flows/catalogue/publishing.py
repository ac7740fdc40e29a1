"""Publishing the gated item master to one storefront: Products built from the items sharing a product
key, pushed through the storefront's PUBLISH_PRODUCTS in batches or, for a large set, its BULK_PUBLISH.

A publish is a CatalogRun holding the product keys it pushes and how far it got, so a run that dies is
resumed by running it again: batches continue after the last one recorded, a bulk job is asked for by
the handle saved before waiting (never started twice). Storefronts create or update by key, so a
batch sent again doubles nothing. Every storefront write goes through the outbound-write log.

What is pushed: publications ready to go (released, where the storefront's release is manual, or
live before), and retired items still live (published=False: unpublished, not deleted). A product
carries all its variants that are live or going live; a variant held by the gate that was never
live is left out; a retired variant of a product still on sale is dropped from it. Only items whose
fingerprint differs from the one last pushed are pending, so a 1 % change pushes about 1 %."""
from __future__ import annotations

import logging
import time
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors.base import ConnectorError, PermanentError, supports
from integrations.connectors.catalogue import BULK_PUBLISH, PUBLISH_PRODUCTS, Product, ProductVariant, PublishResult
from integrations.models import CatalogItem, CatalogPublication, CatalogRun, Connection
from integrations.writes import outbound_write

from .exception_types import GROUPING_CONFLICT, PUBLISH_FAILED
from .gate import StorefrontRules
from .store import master_item

log = logging.getLogger("ledgerline.catalogue")

MAX_ATTEMPTS = 5  # retryable failures of one product before it is an exception
BULK_POLL_SECONDS = 1.0
BULK_WAIT_SECONDS = 120.0  # then the run waits for the next round (the handle is saved)
LEASE_SECONDS = 300  # a run a worker touched this recently is that worker's; older = its worker died
State = CatalogPublication.State


def _pending(connection: Connection, rules: StorefrontRules):
    ready = Q(state=State.READY)
    if rules.release == "manual":
        ready &= Q(released_at__isnull=False) | ~Q(published_fingerprint="")
    retire = Q(state=State.RETIRED) & ~Q(storefront_product_id="") & ~Q(published_fingerprint=F("item__fingerprint"))
    return CatalogPublication.objects.filter(connection=connection).filter(ready | retire)


def pending_keys(connection: Connection, rules: StorefrontRules | None = None) -> list[str]:
    """The product keys with something to push to `connection`, sorted."""
    rules = rules or StorefrontRules.of(connection)
    rows = _pending(connection, rules).values_list("item__product_key", "item__code")
    return sorted({key or code for key, code in rows})


def _included(pub: CatalogPublication, rules: StorefrontRules) -> bool:
    if pub.state == State.LIVE:
        return True
    if pub.state == State.READY:
        return rules.release == "auto" or pub.released_at is not None or bool(pub.published_fingerprint)
    if pub.state in (State.WAITING, State.FAILED):
        return bool(pub.storefront_variant_id)  # on the storefront already: kept there as it is
    return False


def sku_map(connection: Connection, codes) -> dict[str, str]:
    """ERP item code -> the SKU the storefront sells it under (a SKU mapping's, else the code)."""
    from mappings.models import SkuMapping

    codes = list(codes)
    found = {}
    for start in range(0, len(codes), CHUNK):
        rows = SkuMapping.objects.filter(connection=connection, active=True, erp_item_code__in=codes[start:start + CHUNK])
        found.update({row.erp_item_code: row.storefront_sku for row in rows.order_by("pk")})
    return found


CHUNK = 400  # keys per query (SQLite's bound on query parameters)


def build(connection: Connection, keys: list[str], rules: StorefrontRules):
    """(products, {key: [(publication, sku, fingerprint pushed)]}) for these product keys. Read
    CHUNK keys at a time, each item's stored JSON dropped once its variant is built (a first load
    of 100,000 items would otherwise hold every item's data twice)."""
    products, members = [], {}
    for start in range(0, len(keys), CHUNK):
        part = keys[start:start + CHUNK]
        _build_part(connection, part, rules, products, members)
    return products, members


def _build_part(connection: Connection, keys: list[str], rules: StorefrontRules, products: list, members: dict):
    items = CatalogItem.objects.filter(Q(product_key__in=keys) | Q(product_key="", code__in=keys))
    pubs = list(CatalogPublication.objects.filter(connection=connection, item__in=items).select_related("item"))
    pubs.sort(key=lambda p: (p.item.code, p.pk))
    skus = sku_map(connection, [p.item.code for p in pubs])
    groups: dict[str, list[CatalogPublication]] = defaultdict(list)
    for pub in pubs:
        groups[pub.item.key].append(pub)
    for key in keys:
        group = groups.get(key) or []
        # A product goes out whole: releasing one of its variants releases its other complete ones, so a
        # storefront never gets part of it (and one that already sells all of it is adopted, not refused).
        whole = any(_included(p, rules) for p in group)
        live = [p for p in group if _included(p, rules) or (whole and p.state == State.READY)]
        retired = [p for p in group if p.state == State.RETIRED and p.storefront_product_id]
        chosen, published = (live, True) if live else (retired, False)
        if not chosen:
            continue
        masters = [(p, _as_pushed(p) if _kept(p) else master_item(p.item)) for p in chosen]
        first = next((m for p, m in masters if not _kept(p)), masters[0][1])
        variants = tuple(ProductVariant(sku=skus.get(m.code, m.code), item_id=m.id, attributes=dict(m.attributes),
                                        barcodes=m.barcodes, images=m.images, prices=m.prices,
                                        storefront_id=p.storefront_variant_id, images_pushed=_images_pushed(p))
                         for p, m in masters)
        products.append(Product(
            key=key, name=first.name, description=first.description,
            product_type=rules.product_types.get(first.product_type, first.product_type),
            tax_category=rules.tax_categories.get(first.tax_code, rules.tax_category), variants=variants,
            published=published,
            storefront_id=next((p.storefront_product_id for p in chosen + retired if p.storefront_product_id), "")))
        # Who this push answers for: the variants sent, and the retired ones it drops.
        members[key] = [(p, skus.get(m.code, m.code), p.item.fingerprint) for p, m in masters] + [
            (p, skus.get(p.item.code, p.item.code), p.item.fingerprint) for p in retired if p not in chosen]
    for pub in pubs:
        pub.item.data = None  # built: the Product holds what was needed


def _kept(pub: CatalogPublication) -> bool:
    """On the storefront already while the gate holds its change back: sent as it was last pushed."""
    return pub.state in (State.WAITING, State.FAILED) and bool(pub.storefront_variant_id)


def _images_pushed(pub: CatalogPublication) -> tuple[str, ...] | None:
    if pub.pushed_data is None or not pub.storefront_variant_id:
        return None
    return tuple(pub.pushed_data.get("images") or ())


def _as_pushed(pub: CatalogPublication):
    """The MasterItem as it was last pushed (the current data where nothing was recorded)."""
    item = pub.item
    if not pub.pushed_data:
        return master_item(item)
    return master_item(CatalogItem(item_id=item.item_id, code=item.code, product_key=item.product_key,
                                   name=item.name, status=item.status, data=pub.pushed_data))


def _exception_key(connection: Connection, key: str) -> str:
    return f"{connection.pk}:{key}"


def apply_results(connection: Connection, results: list[PublishResult], members: dict) -> tuple[int, int]:
    """Record each product's result on its publications: (ok, failed)."""
    now = timezone.now()
    ok = failed = 0
    answered = set()
    changed, pushed = [], []
    wanted = [f"{code}:{_exception_key(connection, r.key)}" for r in results
              for code in (PUBLISH_FAILED.code, GROUPING_CONFLICT.code)]
    open_ = {}
    for start in range(0, len(wanted), CHUNK):
        open_.update({r.key: r for r in ExceptionRecord.objects.filter(
            key__in=wanted[start:start + CHUNK], status__in=ExceptionRecord.ACTIVE_STATUSES)})
    for result in results:
        group = members.get(result.key)
        if group is None:
            continue
        answered.add(result.key)
        if result.ok:
            ok += 1
            for pub, sku, print_ in group:
                if _kept(pub) and pub.published_fingerprint:
                    continue  # sent as it was last pushed; the gate (or a failure) still holds its change
                pub.state = State.RETIRED if pub.item.status == "retired" else State.LIVE
                pub.published_fingerprint = print_
                pub.sku = sku
                pub.storefront_product_id = result.storefront_id or pub.storefront_product_id
                pub.storefront_variant_id = str(result.variant_ids.get(sku) or pub.storefront_variant_id)
                pub.last_pushed_at, pub.last_error, pub.attempts, pub.released_at = now, "", 0, None
                changed.append(pub)
                pushed.append(pub.pk)
            for code in (PUBLISH_FAILED.code, GROUPING_CONFLICT.code):
                record = open_.get(f"{code}:{_exception_key(connection, result.key)}")
                if record is not None:
                    exception_resolve(record=record, note="Published.", action="auto_resolved")
            continue
        failed += 1
        tries = max((p.attempts for p, _, _ in group), default=0) + 1
        final = result.conflict or not result.retryable or tries >= MAX_ATTEMPTS
        for pub, _, _ in group:
            pub.last_error = result.error[:2000]
            pub.attempts += 1
            if final and pub.state != State.RETIRED:
                pub.state = State.FAILED
            changed.append(pub)
        if final:
            _raise_failed(connection, result.key, result.error, [s for _, s, _ in group],
                          exc_type=GROUPING_CONFLICT if result.conflict else PUBLISH_FAILED)
    if changed:
        write_publications(changed, now)
        record_pushed_data(pushed)
    missing = [key for key in members if key not in answered]
    if missing:  # a product the storefront did not answer for is a failure, not a silent success
        failed += apply_results(connection, [PublishResult(k, ok=False, error="no answer for this product",
                                                           retryable=True) for k in missing],
                                {k: members[k] for k in missing})[1]
    return ok, failed


WRITTEN = ("state", "published_fingerprint", "sku", "storefront_product_id", "storefront_variant_id",
           "last_pushed_at", "last_error", "attempts", "released_at", "updated_at")


def write_publications(pubs: list[CatalogPublication], now) -> None:
    """Store these publications' push outcome: one prepared `UPDATE … WHERE id = ?` run for every row
    (executemany). Django's bulk_update of these ten fields builds a CASE per row and field: 925 of a
    100,000-item first load's 1,325 seconds; this is about a second per 100,000 rows."""
    from django.db import connections, router

    alias = router.db_for_write(CatalogPublication)
    db = connections[alias]
    meta = CatalogPublication._meta
    fields = [meta.get_field(name) for name in WRITTEN]
    quote = db.ops.quote_name
    sql = (f"UPDATE {quote(meta.db_table)} SET " + ", ".join(f"{quote(f.column)} = %s" for f in fields)
           + f" WHERE {quote(meta.pk.column)} = %s")
    rows, seen = [], set()
    for pub in reversed(pubs):  # a publication answered twice: the last answer counts
        if pub.pk in seen:
            continue
        seen.add(pub.pk)
        pub.updated_at = now
        rows.append([f.get_db_prep_save(getattr(pub, f.attname), db) for f in fields] + [pub.pk])
    rows.sort(key=lambda row: row[-1])  # in key order: fewer page visits, and no lock-order surprises
    with transaction.atomic(using=alias), db.cursor() as cursor:
        for start in range(0, len(rows), 5000):
            cursor.executemany(sql, rows[start:start + 5000])


def record_pushed_data(pks: list[int]) -> None:
    """Keep, on each of these publications, its item's data as pushed: copied in the database (the
    item's JSON is not held in memory through a large push), and only where the item still has the
    fingerprint that was pushed (an item the ERP changed meanwhile keeps what was recorded before)."""
    from django.db.models import OuterRef, Subquery
    from django.db.models.functions import Coalesce

    pushed = CatalogItem.objects.filter(pk=OuterRef("item_id"), fingerprint=OuterRef("published_fingerprint"))
    for start in range(0, len(pks), CHUNK):
        CatalogPublication.objects.filter(pk__in=pks[start:start + CHUNK]).update(
            pushed_data=Coalesce(Subquery(pushed.values("data")[:1]), F("pushed_data")))


def _raise_failed(connection: Connection, key: str, error: str, skus: list[str], exc_type=PUBLISH_FAILED) -> None:
    exception_raise(
        exc_type=exc_type, key=_exception_key(connection, key), fingerprint=f"{key}:{error[:200]}",
        message=f"Product {key} ({', '.join(skus)}) was not published to {connection.name}: {error}",
        context={"key": key, "storefront": connection.name, "skus": skus, "connection": connection.code},
        sku=skus[0] if skus else "", subject=("sku", skus[0] if skus else key), last_error=error[:2000],
        retry_args={"kind": "publish", "connection_id": connection.pk, "key": key})


def _active_run(connection: Connection) -> CatalogRun | None:
    return (CatalogRun.objects.filter(connection=connection, kind__in=(CatalogRun.Kind.PUBLISH, CatalogRun.Kind.BULK),
                                      state__in=CatalogRun.ACTIVE).order_by("pk").first())


def publish(connection: Connection, *, client=None, bulk: bool | None = None, keys: list[str] | None = None,
            rules: StorefrontRules | None = None, wait: float = BULK_WAIT_SECONDS) -> CatalogRun | None:
    """Push what is pending to `connection` (or resume the run that was under way); the run, or None
    when there was nothing to push. A bulk job still running after `wait` seconds leaves the run
    waiting (its handle saved): the next call picks it up."""
    from integrations.connectors import connector_for

    rules = rules or StorefrontRules.of(connection)
    client = client or connector_for(connection)
    if not supports(client, PUBLISH_PRODUCTS):
        if pending_keys(connection, rules):
            _raise_failed(connection, "(all)", f"the {connection.kind} connector cannot publish products", [])
        return None
    run = _active_run(connection)
    if run is not None and _leased(run):
        return run  # another worker is pushing it right now
    if run is None:
        keys = pending_keys(connection, rules) if keys is None else sorted(set(keys))
        if not keys:
            return None
        use_bulk = (len(keys) > rules.bulk_threshold) if bulk is None else bulk
        kind = CatalogRun.Kind.BULK if use_bulk and supports(client, BULK_PUBLISH) else CatalogRun.Kind.PUBLISH
        try:
            with transaction.atomic():
                run = CatalogRun.objects.create(connection=connection, kind=kind, keys=keys, total=len(keys),
                                                summary={"next": 0})
        except IntegrityError:  # another worker started one a moment ago: resume that one
            run = _active_run(connection)
            if run is None:
                return None
    _beat(run)
    try:
        if run.kind == CatalogRun.Kind.BULK:
            _run_bulk(run, connection, client, rules, wait)
        else:
            _run_batches(run, connection, client, rules)
        if run.state in CatalogRun.ACTIVE:  # left for the next round: free for any worker
            run.summary = {**run.summary, "worker_at": None}
            run.save(update_fields=["summary"])
    except Exception as exc:  # noqa: BLE001 - never a silent death: the run says why, an owner is told
        log.exception("catalogue publish to %s failed", connection.code)
        run.state, run.error, run.finished_at = CatalogRun.State.FAILED, str(exc)[:2000], timezone.now()
        run.save(update_fields=["state", "error", "finished_at"])
        _raise_failed(connection, "(run)", f"the publish run stopped: {exc}", [])
        raise
    return run


def _leased(run: CatalogRun) -> bool:
    beat = (run.summary or {}).get("worker_at")
    return bool(beat) and (timezone.now().timestamp() - float(beat)) < LEASE_SECONDS


def _beat(run: CatalogRun) -> None:
    run.summary = {**(run.summary or {}), "worker_at": timezone.now().timestamp()}
    run.save(update_fields=["summary"])


def _finish(run: CatalogRun) -> None:
    run.state, run.finished_at, run.error = CatalogRun.State.DONE, timezone.now(), ""
    run.save(update_fields=["state", "finished_at", "error", "done", "failed", "summary"])
    log.info("catalogue %s run %s: %s published, %s failed", run.kind, run.pk, run.done, run.failed)


def _retryable(exc: ConnectorError) -> bool:
    return not isinstance(exc, PermanentError) or getattr(exc, "retry_after", None) is not None


def _run_batches(run: CatalogRun, connection: Connection, client, rules: StorefrontRules) -> None:
    position = int((run.summary or {}).get("next", 0))
    while position < len(run.keys):
        chunk = run.keys[position:position + rules.batch_size]
        products, members = build(connection, chunk, rules)
        if products:
            try:
                with outbound_write(action="catalogue.publish", connection=connection,
                                    idempotency_key=f"catalogue:{connection.pk}:run-{run.pk}:{position}",
                                    subject=("catalogue_run", str(run.pk))) as write:
                    results = client.publish_products(products)
                    write.response_id = f"{sum(1 for r in results if r.ok)}/{len(results)} ok"
            except ConnectorError as exc:
                if _retryable(exc):
                    # The vendor is busy or down: the run stays where it is and the next round resumes it.
                    run.error = f"will retry: {exc}"[:2000]
                    run.summary = {**run.summary, "next": position, "retries": int(run.summary.get("retries", 0)) + 1}
                    run.save(update_fields=["error", "summary"])
                    if run.summary["retries"] < MAX_ATTEMPTS:
                        return
                results = [PublishResult(p.key, ok=False, error=str(exc)) for p in products]
            ok, bad = apply_results(connection, results, members)
            run.done += ok
            run.failed += bad
        position += len(chunk)
        run.summary = {**run.summary, "next": position, "retries": 0, "worker_at": timezone.now().timestamp()}
        run.save(update_fields=["done", "failed", "summary"])
    _finish(run)


def _bulk_results(client, handle: str, products: list[Product]) -> list[PublishResult]:
    try:
        return client.bulk_publish_results(handle, products)
    except TypeError:  # a publisher that remembers its own products (the Protocol's form)
        return client.bulk_publish_results(handle)


def _run_bulk(run: CatalogRun, connection: Connection, client, rules: StorefrontRules, wait: float) -> None:
    products, members = build(connection, run.keys, rules)
    if not run.bulk_handle:
        if not products:
            _finish(run)
            return
        try:
            with outbound_write(action="catalogue.bulk_publish", connection=connection,
                                idempotency_key=f"catalogue:{connection.pk}:run-{run.pk}:bulk",
                                subject=("catalogue_run", str(run.pk))) as write:
                handle = client.bulk_publish_start(products)
                write.response_id = handle
        except ConnectorError as exc:
            if not _retryable(exc):
                raise
            run.error = f"will retry: {exc}"[:2000]  # e.g. another bulk operation is running on the shop
            run.save(update_fields=["error"])
            return
        run.bulk_handle, run.state = handle, CatalogRun.State.WAITING
        run.save(update_fields=["bulk_handle", "state"])  # saved before waiting: a crash resumes this job
    began = time.monotonic()
    while True:
        try:
            status = client.bulk_publish_status(run.bulk_handle)
        except ConnectorError as exc:
            if not _retryable(exc):
                raise
            # Shopify slow to answer or down: the job runs on there; the next round asks again. Rounds
            # on end without an answer are someone's to look at (the run still asks each round).
            failures = int(run.summary.get("poll_failures", 0)) + 1
            run.summary = {**run.summary, "poll_failures": failures}
            run.error = f"will retry: {exc}"[:2000]
            run.save(update_fields=["error", "summary"])
            if failures == MAX_ATTEMPTS:
                _raise_failed(connection, "(run)", f"the bulk job's status could not be read {failures} rounds "
                                                   f"running: {exc}", [])
            return
        run.summary = {**run.summary, "objects": status.done_count, "poll_failures": 0,
                       "worker_at": timezone.now().timestamp()}
        run.save(update_fields=["summary"])
        if status.state != "running":
            break
        if time.monotonic() - began >= wait:
            return
        time.sleep(BULK_POLL_SECONDS if wait >= BULK_POLL_SECONDS else max(wait / 10, 0.01))
    if status.state == "completed":
        ok, bad = apply_results(connection, _bulk_results(client, run.bulk_handle, products), members)
        run.done, run.failed = ok, bad
        _finish(run)
        return
    apply_results(connection, [PublishResult(p.key, ok=False, error=f"bulk job {status.error}", retryable=True)
                               for p in products], members)
    run.failed = len(products)
    run.state, run.error, run.finished_at = CatalogRun.State.FAILED, f"bulk job {status.error}"[:2000], timezone.now()
    run.save(update_fields=["failed", "state", "error", "finished_at"])
