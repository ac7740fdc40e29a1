"""New-SKU gating: whether an item may go live on one storefront, and what it still lacks.

An item goes live only with a cost, a lead time, a tax code, a default depot, at least one price in
the storefront's currency and the attributes the storefront requires (connection setting
`catalogue_required_attributes`). Otherwise its publication waits, with an owned exception listing
exactly what is missing; the exception follows the item (updated when the list changes) and
resolves itself when the item is complete."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors.catalogue import MasterItem
from integrations.models import CatalogItem, CatalogPublication, Connection

from .exception_types import ITEM_INCOMPLETE
from .store import master_item

log = logging.getLogger("ledgerline.catalogue")

SERVICE_TYPES = ("service",)  # ERP items that are charges (shipping, discount …), never products
DEFAULT_BULK_THRESHOLD = 250


@dataclass
class StorefrontRules:
    """A storefront connection's catalogue settings (Connection.settings), with their defaults."""

    currency: str = ""
    required_attributes: list[str] = field(default_factory=list)
    release: str = "auto"  # "auto" | "manual"
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    batch_size: int = 50
    tax_categories: dict = field(default_factory=dict)  # ERP tax code -> storefront tax category key
    tax_category: str = ""  # the default tax category key ("" = none sent)
    product_types: dict = field(default_factory=dict)  # ERP product type -> storefront product type
    skip_types: tuple = SERVICE_TYPES

    @classmethod
    def of(cls, connection: Connection) -> "StorefrontRules":
        own = connection.settings or {}
        currency = str(own.get("catalogue_currency") or own.get("currency") or "").upper()
        if not currency and connection.kind == "shopify":
            currency = _shop_currency(connection)
        return cls(currency=currency,
                   required_attributes=[str(a) for a in own.get("catalogue_required_attributes") or ()],
                   release="manual" if str(own.get("catalogue_release") or "auto").lower() == "manual" else "auto",
                   bulk_threshold=int(own.get("catalogue_bulk_threshold") or DEFAULT_BULK_THRESHOLD),
                   batch_size=max(1, min(int(own.get("catalogue_batch_size") or 50), 250)),
                   tax_categories=dict(own.get("catalogue_tax_categories") or {}),
                   tax_category=str(own.get("catalogue_tax_category") or ""),
                   product_types=dict(own.get("catalogue_product_types") or {}),
                   skip_types=tuple(own.get("catalogue_skip_product_types") or SERVICE_TYPES))


def _shop_currency(connection: Connection) -> str:
    try:
        from integrations.drift.price_comparison import shop_currency

        return shop_currency(connection) or ""
    except Exception:  # noqa: BLE001 - a shop that cannot say leaves the price requirement currency-free
        log.warning("catalogue: no currency known for %s", connection.code, exc_info=True)
        return ""


def missing(item: MasterItem, rules: StorefrontRules) -> list[str]:
    """What the item lacks before it may go live on a storefront with these rules, in a fixed order."""
    gaps = []
    if item.unit_cost is None:
        gaps.append("cost")
    if item.lead_time_days is None:
        gaps.append("lead time")
    if not item.tax_code:
        gaps.append("tax code")
    if not item.depot:
        gaps.append("depot")
    wanted = rules.currency
    if not any(p.type == "list" and (not wanted or p.currency == wanted) for p in item.prices):
        gaps.append(f"a price in {wanted}" if wanted else "a price")
    for name in rules.required_attributes:
        value = item.attributes.get(name)
        if value in (None, "", [], ()):
            gaps.append(f"attribute {name}")
    return gaps


def _exception_key(connection: Connection, item: CatalogItem) -> str:
    return f"{connection.pk}:{item.erp_connection_id}:{item.item_id}"


def gate(items: list[CatalogItem], connection: Connection, rules: StorefrontRules | None = None, *,
         masters: dict | None = None) -> dict[str, int]:
    """Decide each item's publication on `connection` after a change: waiting (with its exception),
    ready (to publish, or to wait for a manual release), retired. Returns counts per outcome. A few
    queries per page of items, whatever its size, besides one per exception raised."""
    rules = rules or StorefrontRules.of(connection)
    pubs = {p.item_id: p for p in CatalogPublication.objects.filter(connection=connection, item__in=items)}
    keys = {row.pk: f"{ITEM_INCOMPLETE.code}:{_exception_key(connection, row)}" for row in items}
    open_ = {r.key: r for r in ExceptionRecord.objects.filter(key__in=list(keys.values()),
                                                            status__in=ExceptionRecord.ACTIVE_STATUSES)}
    counts = {"waiting": 0, "ready": 0, "retired": 0, "unchanged": 0, "skipped": 0}
    create, update = [], []
    now = timezone.now()
    for row in items:
        item = masters[row.pk] if masters and row.pk in masters else master_item(row)
        pub = pubs.get(row.pk)
        if item.product_type in rules.skip_types:
            counts["skipped"] += 1
            continue
        if pub is None:
            pub = CatalogPublication(item=row, connection=connection)
        before = (pub.state, list(pub.missing or ()), pub.published_fingerprint)
        record = open_.get(keys[row.pk])
        if item.status == "retired":
            pub.state, pub.missing = CatalogPublication.State.RETIRED, []
            if not pub.storefront_product_id:  # never live: nothing to unpublish
                pub.published_fingerprint = row.fingerprint
            if record is not None:
                exception_resolve(record=record, note="The item was retired in the ERP.", action="auto_resolved")
            counts["retired"] += 1
        else:
            gaps = missing(item, rules)
            if gaps:
                pub.state, pub.missing = CatalogPublication.State.WAITING, gaps
                if record is None or record.context.get("missing_list") != gaps:
                    _raise_incomplete(connection, row, gaps)
                counts["waiting"] += 1
            else:
                if pub.state != CatalogPublication.State.LIVE or pub.published_fingerprint != row.fingerprint:
                    pub.state = CatalogPublication.State.READY
                pub.missing = []
                if record is not None:
                    exception_resolve(record=record, note="The ERP completed the item: it is published"
                                      + (" once released." if rules.release == "manual" else "."),
                                      action="auto_resolved")
                counts["ready" if pub.state == CatalogPublication.State.READY else "unchanged"] += 1
        pub.updated_at = now
        if pub.pk is None:
            create.append(pub)
        elif (pub.state, list(pub.missing), pub.published_fingerprint) != before:
            update.append(pub)
    if create:
        CatalogPublication.objects.bulk_create(create, batch_size=500)
    if update:
        CatalogPublication.objects.bulk_update(update, ["state", "missing", "published_fingerprint", "updated_at"],
                                               batch_size=500)
    return counts


def _raise_incomplete(connection: Connection, row: CatalogItem, gaps: list[str]) -> None:
    text = ", ".join(gaps)
    exception_raise(
        exc_type=ITEM_INCOMPLETE, key=_exception_key(connection, row), fingerprint=f"{row.item_id}:{text}",
        message=f"{row.code} ({row.name}) is not published to {connection.name} until the ERP gives it: {text}.",
        context={"code": row.code, "name": row.name, "storefront": connection.name, "missing": text,
                 "missing_list": gaps, "item_id": row.item_id, "connection": connection.code},
        sku=row.code, subject=("sku", row.code),
        retry_args={"kind": "pull", "erp_connection_id": row.erp_connection_id, "connection_id": connection.pk})
