"""The ERPs' item records read as MasterItems (integrations/connectors/catalogue.py): one parser for
the REST ERP's JSON and Prima's item elements once they are dicts, so both state an item alike.
A price the ERP cannot state (no decimal amount, no currency) is left out rather than guessed."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from .catalogue import ItemComponent, ItemPrice, MasterItem


def _moment(value) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _int(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def item_price(row: dict) -> ItemPrice | None:
    amount = _decimal(row.get("amount"))
    currency = str(row.get("currency") or "").strip().upper()
    if amount is None or not currency:
        return None
    return ItemPrice(currency=currency, amount=amount, type=row.get("type") or "list",
                     country=str(row.get("country") or "").upper(), customer_group=row.get("customer_group") or "",
                     channel=row.get("channel") or "", min_quantity=_int(row.get("min_quantity")) or 1,
                     valid_from=_moment(row.get("valid_from")), valid_until=_moment(row.get("valid_until")),
                     price_list=row.get("price_list") or "")


def master_item(row: dict) -> MasterItem:
    """One item record {id, code, product_key, name, status, attributes, prices, …} as a MasterItem."""
    active = row.get("active", True)
    status = row.get("status") or ("active" if active not in (False, "false", "0", 0) else "retired")
    return MasterItem(
        id=str(row.get("id") or row["code"]), code=str(row["code"]), product_key=str(row.get("product_key") or ""),
        name=str(row.get("name") or row.get("description") or row["code"]),
        description="" if str(row.get("description") or "") == str(row.get("name") or "") else str(row.get("description") or ""),
        status="retired" if status == "retired" else "active", product_type=str(row.get("product_type") or ""),
        attributes=dict(row.get("attributes") or {}), tax_code=str(row.get("tax_code") or ""),
        unit_cost=_decimal(row.get("unit_cost")), lead_time_days=_int(row.get("lead_time_days")),
        supplier=str(row.get("supplier") or ""), depot=str(row.get("depot") or ""),
        barcodes=tuple(str(b) for b in row.get("barcodes") or ()), images=tuple(str(i) for i in row.get("images") or ()),
        components=tuple(ItemComponent(str(c["item_code"]), _int(c.get("quantity")) or 1)
                         for c in row.get("components") or ()),
        prices=tuple(p for p in (item_price(r) for r in row.get("prices") or ()) if p is not None),
        updated_at=_moment(row.get("updated_at")),
    )
