"""Pulling the item master: the items an ERP changed since the stored cursor, stored as CatalogItems.

Each page is stored in one transaction together with the cursor it ends at, so a pull that dies
resumes from the last page it stored and nothing is missed or read twice. An item whose data has
the same fingerprint as stored is left alone (the ERP touching an item changes nothing here)."""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.connectors.catalogue import ItemComponent, ItemPrice, MasterItem
from integrations.models import CatalogItem, CatalogRun, Connection

log = logging.getLogger("ledgerline.catalogue")

PAGE_LIMIT = 200


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def item_price_rows(rows) -> list[ItemPrice]:
    """ItemPrices of the ERP connector's price dicts (item_prices())."""
    return [ItemPrice(currency=r["currency"], amount=Decimal(str(r["amount"])), type=r.get("type") or "list",
                      country=r.get("country") or "", customer_group=r.get("customer_group") or "",
                      channel=r.get("channel") or "", min_quantity=int(r.get("min_quantity") or 1),
                      price_list=r.get("price_list") or "") for r in rows]


def _price_data(p: ItemPrice) -> dict:
    return {"currency": p.currency, "amount": str(p.amount), "type": p.type, "country": p.country,
            "customer_group": p.customer_group, "channel": p.channel, "min_quantity": p.min_quantity,
            "valid_from": p.valid_from.isoformat() if p.valid_from else None,
            "valid_until": p.valid_until.isoformat() if p.valid_until else None, "price_list": p.price_list}


def item_data(item: MasterItem) -> dict:
    """The MasterItem as JSON: Decimals as strings, datetimes ISO 8601 (by hand: dataclasses.asdict
    deep-copies every value, a third of a 100,000-item pull)."""
    return {
        "id": item.id, "code": item.code, "product_key": item.product_key, "name": item.name,
        "description": item.description, "status": item.status, "product_type": item.product_type,
        "attributes": _plain(item.attributes), "tax_code": item.tax_code,
        "unit_cost": str(item.unit_cost) if item.unit_cost is not None else None,
        "lead_time_days": item.lead_time_days, "supplier": item.supplier, "depot": item.depot,
        "barcodes": list(item.barcodes), "images": list(item.images),
        "components": [{"item_code": c.item_code, "quantity": c.quantity} for c in item.components],
        "prices": [_price_data(p) for p in item.prices],
        "updated_at": item.updated_at.isoformat() if item.updated_at else None,
    }


def fingerprint(data: dict) -> str:
    """What makes two readings of an item the same: everything but the ERP's own change stamp."""
    body = {k: v for k, v in data.items() if k != "updated_at"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _moment(value):
    return datetime.fromisoformat(value) if value else None


def master_item(catalog_item: CatalogItem) -> MasterItem:
    """The stored item as the MasterItem the ERP stated."""
    data = dict(catalog_item.data or {})
    prices = tuple(ItemPrice(**{**p, "amount": Decimal(str(p["amount"])), "valid_from": _moment(p.get("valid_from")),
                                "valid_until": _moment(p.get("valid_until"))}) for p in data.get("prices") or ())
    return MasterItem(
        id=data.get("id") or catalog_item.item_id, code=data.get("code") or catalog_item.code,
        product_key=data.get("product_key", catalog_item.product_key), name=data.get("name") or catalog_item.name,
        description=data.get("description") or "", status=data.get("status") or catalog_item.status,
        product_type=data.get("product_type") or "", attributes=dict(data.get("attributes") or {}),
        tax_code=data.get("tax_code") or "",
        unit_cost=Decimal(data["unit_cost"]) if data.get("unit_cost") not in (None, "") else None,
        lead_time_days=data.get("lead_time_days"), supplier=data.get("supplier") or "", depot=data.get("depot") or "",
        barcodes=tuple(data.get("barcodes") or ()), images=tuple(data.get("images") or ()),
        components=tuple(ItemComponent(**c) for c in data.get("components") or ()), prices=prices,
        updated_at=_moment(data.get("updated_at")))


def store_items(erp: Connection, items: list[MasterItem]) -> tuple[list[int], dict[int, str]]:
    """Store a page of items: (ids of CatalogItems new or changed, {id: previous code} of those whose
    code changed). Call inside a transaction."""
    if not items:
        return [], {}
    latest = {item.id: item for item in items}  # the page may state an item twice: the last one counts
    existing = {row.item_id: row for row in CatalogItem.objects.filter(erp_connection=erp, item_id__in=list(latest))}
    changed, renamed, create, update = [], {}, [], []
    for item_id, item in latest.items():
        data = item_data(item)
        print_ = fingerprint(data)
        fields = {"code": item.code, "product_key": item.product_key, "name": item.name[:255], "status": item.status,
                  "data": data, "fingerprint": print_, "erp_updated_at": item.updated_at}
        row = existing.get(item_id)
        if row is None:
            create.append(CatalogItem(erp_connection=erp, item_id=item_id, **fields))
            continue
        if row.fingerprint == print_:
            continue
        if row.code != item.code:
            renamed[row.pk] = row.code
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = timezone.now()
        update.append(row)
    if create:
        CatalogItem.objects.bulk_create(create, batch_size=500)
        changed += list(CatalogItem.objects.filter(erp_connection=erp, item_id__in=[c.item_id for c in create])
                        .values_list("pk", flat=True))
    if update:
        CatalogItem.objects.bulk_update(update, ["code", "product_key", "name", "status", "data", "fingerprint",
                                                 "erp_updated_at", "updated_at"], batch_size=500)
        changed += [row.pk for row in update]
    return changed, renamed


def last_cursor(erp: Connection) -> str:
    run = (CatalogRun.objects.filter(connection=erp, kind=CatalogRun.Kind.PULL).exclude(cursor="")
           .order_by("-pk").only("cursor").first())
    return run.cursor if run else ""


def pull(erp: Connection, client, *, limit: int = PAGE_LIMIT, on_page=None) -> CatalogRun:
    """Read every item changed since the stored cursor, page by page. `on_page(changed_ids, renamed)`
    runs inside each page's transaction (the flow gates the changed items there). Raises the
    connector's error after recording it on the run (the next pull resumes from the same cursor)."""
    run = (CatalogRun.objects.filter(connection=erp, kind=CatalogRun.Kind.PULL, state__in=CatalogRun.ACTIVE)
           .order_by("-pk").first())
    if run is None:
        try:
            with transaction.atomic():
                run = CatalogRun.objects.create(connection=erp, kind=CatalogRun.Kind.PULL, cursor=last_cursor(erp))
        except IntegrityError:  # another worker began a pull a moment ago: this one shares it
            run = CatalogRun.objects.filter(connection=erp, kind=CatalogRun.Kind.PULL,
                                            state__in=CatalogRun.ACTIVE).order_by("-pk").first()
            if run is None:
                raise
    stored = 0
    try:
        while True:
            page = client.items_changed_since(run.cursor, limit=limit)
            with transaction.atomic():
                changed, renamed = store_items(erp, page.items)
                if on_page is not None and (changed or renamed):
                    on_page(changed, renamed)
                run.cursor = page.cursor or run.cursor
                run.total += len(page.items)
                run.done += len(changed)
                run.save(update_fields=["cursor", "total", "done"])
            stored += len(changed)
            if not page.has_more or not page.items:
                break
    except Exception as exc:
        run.state, run.error, run.finished_at = CatalogRun.State.FAILED, str(exc)[:2000], timezone.now()
        run.save(update_fields=["state", "error", "finished_at"])
        raise
    run.state, run.finished_at, run.error = CatalogRun.State.DONE, timezone.now(), ""
    run.summary = {**(run.summary or {}), "changed": stored}
    run.save(update_fields=["state", "finished_at", "error", "summary"])
    log.info("item master pull %s: %s read, %s new or changed", erp.code, run.total, stored)
    return run
