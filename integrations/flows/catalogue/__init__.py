"""The item master to the storefronts: pull what changed in the ERP (ITEM_MASTER, by cursor), gate each
item per storefront (an incomplete one waits with an owned exception listing what it lacks), build
Products (variants grouped by product key, SKUs through the SKU mappings) and publish them through
each storefront's PUBLISH_PRODUCTS / BULK_PUBLISH, in resumable runs.

Which storefronts: those whose connection settings say `"catalogue_publish": true` (or those named).
Their settings: `catalogue_release` ("auto" | "manual": manual = new items wait in the publish queue
until released), `catalogue_required_attributes`, `catalogue_currency` (else `currency`, else the
shop's own), `catalogue_bulk_threshold` (more products than this go the bulk path, default 250),
`catalogue_batch_size` (default 50), `catalogue_tax_categories` / `catalogue_tax_category` (ERP tax
code -> the storefront's tax category key), `catalogue_product_types` (ERP product type -> the
storefront's).

A SKU renamed in the ERP (same item id, new code) is a SKU mapping change: the storefront keeps
selling the variant under the SKU it knows, mapped to the new code (simple_history keeps the old
row), and the same variant is updated — never a new product. Retired items are unpublished."""
from __future__ import annotations

import logging

from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors.base import ConnectorError, supports
from integrations.connectors.catalogue import ITEM_MASTER, ItemPrice, MasterItem
from integrations.models import CatalogItem, CatalogPublication, Connection

from .exception_types import ITEM_INCOMPLETE, PUBLISH_FAILED, PULL_FAILED
from .gate import StorefrontRules, gate, missing
from .publishing import build, pending_keys, publish
from .store import master_item as _master_item
from .store import pull

log = logging.getLogger("ledgerline.catalogue")

__all__ = ["ITEM_INCOMPLETE", "PUBLISH_FAILED", "PULL_FAILED", "StorefrontRules", "build", "catalogue_sync",
           "erp_prices", "gate", "master_item", "missing", "pending_keys", "publish", "pull_and_gate", "release"]


def master_item(catalog_item: CatalogItem) -> MasterItem:
    """The stored item as the ERP stated it."""
    return _master_item(catalog_item)


def erp_prices(sku: str, connection: Connection) -> list[ItemPrice]:
    """The ERP's prices of the item a storefront sells as `sku` (through its SKU mapping): the item master
    as stored, else (an item not pulled yet) as the ERP states them now; [] when the ERP has none."""
    from mappings.models import SkuMapping

    from .store import item_price_rows

    row = SkuMapping.objects.filter(connection=connection, storefront_sku=sku, active=True).first()
    code = row.erp_item_code if row is not None and row.erp_item_code else sku
    item = CatalogItem.objects.filter(code=code).exclude(status=CatalogItem.Status.RETIRED).order_by("pk").first()
    if item is not None:
        return list(_master_item(item).prices)
    from integrations.connectors import get_erp

    erp = get_erp()
    if not hasattr(erp, "item_prices"):
        return []
    for found, rows in erp.item_prices():
        if found == code:
            return item_price_rows(rows)
    return []


def catalogue_storefronts() -> list[Connection]:
    return [c for c in Connection.objects.storefronts().filter(active=True).order_by("pk")
            if (c.settings or {}).get("catalogue_publish") in (True, "true", "1", 1)]


def _item_master_erps() -> list[Connection]:
    """The active ERP connections whose connector reads an item master."""
    from integrations.connectors.erp import RestErpClient
    from integrations.connectors.prima import PrimaClient

    classes = {"rest_erp": RestErpClient, "prima": PrimaClient}
    return [c for c in Connection.objects.erps().filter(active=True).order_by("pk")
            if c.kind in classes and supports(classes[c.kind], ITEM_MASTER)]


def _renamed(renamed: dict[int, str], storefronts: list[Connection]) -> None:
    """The ERP changed these items' codes: each storefront's SKU now maps to the new code."""
    from mappings.models import SkuMapping

    items = {i.pk: i for i in CatalogItem.objects.filter(pk__in=list(renamed))}
    # Every storefront the item was ever pushed to, not only this round's.
    for pub in CatalogPublication.objects.filter(item_id__in=list(renamed)).exclude(sku="").select_related("connection"):
        new_code = items[pub.item_id].code
        row = SkuMapping.objects.filter(connection=pub.connection, storefront_sku=pub.sku).first()
        if row is None:
            SkuMapping.objects.create(connection=pub.connection, storefront_sku=pub.sku, erp_item_code=new_code,
                                      note=f"ERP renamed {renamed[pub.item_id]} to {new_code}")
        elif row.erp_item_code != new_code:
            row.erp_item_code = new_code
            row.note = f"ERP renamed {renamed[pub.item_id]} to {new_code}"[:200]
            row.save()  # simple_history keeps the row as it was
        log.info("catalogue: %s renamed %s -> %s on %s", pub.sku, renamed[pub.item_id], new_code, pub.connection.code)


def pull_and_gate(erp: Connection, storefronts: list[Connection], *, client=None) -> dict:
    """Pull the ERP's changes and gate each changed item for each storefront (in the page's transaction)."""
    from integrations.connectors import connector_for

    client = client or connector_for(erp)
    rules = {s.pk: StorefrontRules.of(s) for s in storefronts}
    counts = {"read": 0, "changed": 0}

    def on_page(changed, renamed):
        rows = list(CatalogItem.objects.filter(pk__in=changed))
        if renamed:
            _renamed(renamed, storefronts)
        masters = {row.pk: _master_item(row) for row in rows}  # parsed once for every storefront
        for storefront in storefronts:
            for outcome, n in gate(rows, storefront, rules[storefront.pk], masters=masters).items():
                counts[f"{storefront.code}:{outcome}"] = counts.get(f"{storefront.code}:{outcome}", 0) + n

    key = f"{PULL_FAILED.code}:{erp.pk}"
    try:
        run = pull(erp, client, on_page=on_page)
    except ConnectorError as exc:
        exception_raise(exc_type=PULL_FAILED, key=str(erp.pk), fingerprint=f"{erp.pk}:{type(exc).__name__}",
                        message=f"The item master of {erp.name} could not be read: {exc}", last_error=str(exc)[:2000],
                        context={"erp": erp.name, "connection": erp.code}, subject=("connection", str(erp.pk)),
                        retry_args={"kind": "pull", "erp_connection_id": erp.pk})
        counts["error"] = str(exc)
        return counts
    for record in ExceptionRecord.objects.filter(key=key, status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note="The item master was read.", action="auto_resolved")
    counts.update(read=run.total, changed=run.done, run=run.pk)
    return counts


def catalogue_sync(*, erp_connection: Connection | None = None, storefronts: list[Connection] | None = None,
                   bulk: bool | None = None, wait: float | None = None) -> dict:
    """One round of the flow: pull and gate each ERP's changes, then publish what is pending to each
    storefront (resuming runs under way). Returns what happened, per ERP and storefront."""
    storefronts = catalogue_storefronts() if storefronts is None else list(storefronts)
    erps = [erp_connection] if erp_connection is not None else _item_master_erps()
    outcome = {}
    for erp in erps:
        outcome[erp.code] = pull_and_gate(erp, storefronts)
    for storefront in storefronts:
        kwargs = {} if wait is None else {"wait": wait}
        try:
            run = publish(storefront, bulk=bulk, **kwargs)
        except Exception as exc:  # noqa: BLE001 - recorded on the run and as an exception by publish()
            outcome[storefront.code] = {"error": str(exc)}
            continue
        outcome[storefront.code] = ({"published": 0} if run is None else
                                    {"run": run.pk, "kind": run.kind, "state": run.state, "total": run.total,
                                     "published": run.done, "failed": run.failed, "error": run.error})
    return outcome


def release(publications) -> dict:
    """Publish these publications now (the publish queue's release). Complete ones are released and
    their storefronts' publish runs queued; one still waiting for data stays held with its exception."""
    from django_q.tasks import async_task

    now = timezone.now()
    released, held, connections = 0, 0, set()
    for pub in publications:
        if pub.state in (CatalogPublication.State.READY, CatalogPublication.State.FAILED):
            CatalogPublication.objects.filter(pk=pub.pk).update(state=CatalogPublication.State.READY, released_at=now,
                                                                attempts=0, updated_at=now)
            released += 1
            connections.add(pub.connection_id)
        else:
            held += 1
    for connection_id in sorted(connections):
        async_task("integrations.flows.catalogue.tasks.publish_storefront", connection_id,
                   task_name=f"catalogue-release-{connection_id}")
    return {"released": released, "held": held}


def retry_catalogue_exception(record) -> bool:
    """A person retries a catalogue exception: pull and gate again (an incomplete item, a failed read),
    or publish the product again (a failed publish). True when it cleared."""
    args = record.retry_args or {}
    if args.get("kind") == "publish":
        connection = Connection.objects.filter(pk=args.get("connection_id")).first()
        if connection is None:
            return False
        key = args.get("key") or ""
        pubs = CatalogPublication.objects.filter(connection=connection, state=CatalogPublication.State.FAILED)
        pubs.update(state=CatalogPublication.State.READY, attempts=0, released_at=timezone.now())
        keys = None if key in ("(run)", "(all)") else [key]
        try:
            publish(connection, keys=keys)
        except Exception:  # noqa: BLE001 - publish() recorded it
            return False
    else:
        erp = Connection.objects.filter(pk=args.get("erp_connection_id")).first()
        if erp is None:
            return False
        storefronts = catalogue_storefronts()
        extra = Connection.objects.filter(pk=args.get("connection_id")).first()
        if extra is not None and extra not in storefronts:
            storefronts.append(extra)
        if "error" in pull_and_gate(erp, storefronts):
            return False
        if record.type_code == ITEM_INCOMPLETE.code:
            # Gate the item again even when the ERP did not change it (a connection setting may have).
            item = CatalogItem.objects.filter(erp_connection=erp, item_id=(record.context or {}).get("item_id")).first()
            if item is not None and extra is not None:
                gate([item], extra)
                publish(extra)
    record.refresh_from_db()
    return not record.is_active
