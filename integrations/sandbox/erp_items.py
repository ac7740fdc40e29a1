"""The sandbox ERPs' item master: every item with a stable id, its product group, status, attributes,
barcodes, images, kit components, default depot and scoped price lists, and a change feed read by an
opaque cursor.

Each change (a new item, new figures, new prices, a new code, a retirement) stamps the item with a new
`updated_at`, strictly later than any stamp before it, so the feed ordered by (updated_at, id) never
puts a new change behind a cursor already handed out: a reader that resumes from its cursor misses
nothing and sees nothing twice. Items stamped in the same instant (a bulk import) are told apart by
id. The cursor is opaque to clients (base64 of the last (updated_at, id) read).

Shared by the REST ERP and Prima sandboxes (a mixin on an app with `self.items` keyed by code and a
`self.lock`); imports nothing of the product."""
from __future__ import annotations

import base64
import bisect
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

PRICE_SCOPE = ("currency", "amount", "type", "country", "customer_group", "channel", "min_quantity", "valid_from",
               "valid_until", "price_list")
MASTER_FIELDS = ("name", "description", "product_key", "status", "product_type", "attributes", "barcodes", "images",
                 "components", "depot", "tax_code", "unit_cost", "lead_time_days", "supplier", "prices", "active")


def encode_cursor(stamp: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{stamp}|{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(updated_at, id) of an opaque cursor; ValueError when it is not one this ERP handed out."""
    if not cursor:
        return ("", "")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, item_id = raw.split("|", 1)
        datetime.fromisoformat(stamp)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a cursor of this item feed: {cursor!r}") from exc
    return stamp, item_id


def normal_price(row: dict) -> dict:
    """A price list row with every scope field: amount a decimal string, min_quantity an int."""
    try:
        amount = str(Decimal(str(row["amount"])))
    except (KeyError, InvalidOperation) as exc:
        raise ValueError(f"a price needs a decimal amount: {row!r}") from exc
    if not str(row.get("currency") or "").strip():
        raise ValueError(f"a price needs a currency: {row!r}")
    return {"currency": str(row["currency"]).upper(), "amount": amount, "type": row.get("type") or "list",
            "country": str(row.get("country") or "").upper(), "customer_group": row.get("customer_group") or "",
            "channel": row.get("channel") or "", "min_quantity": int(row.get("min_quantity") or 1),
            "valid_from": row.get("valid_from") or None, "valid_until": row.get("valid_until") or None,
            "price_list": row.get("price_list") or ""}


class ItemMasterBook:
    """Stable ids, stamps and the change feed over the app's item table (code -> item dict): `self.items`,
    or the attribute ITEM_TABLE names (Prima's `stock_items`)."""

    ITEM_TABLE = "items"

    @property
    def _book(self) -> dict:
        return getattr(self, self.ITEM_TABLE)

    def _reset_item_master(self) -> None:
        self._item_codes: dict[str, str] = {}  # id -> current code
        self._item_changes: list[tuple[str, str]] = []  # (updated_at, id), sorted
        self._next_item_id = 1
        self._last_item_stamp = ""

    def _stamp(self) -> str:
        now = datetime.now(timezone.utc)
        if self._last_item_stamp:
            last = datetime.fromisoformat(self._last_item_stamp)
            if now <= last:
                now = last + timedelta(microseconds=1)
        self._last_item_stamp = now.isoformat(timespec="microseconds")
        return self._last_item_stamp

    def _touch_item(self, item: dict, previous: dict | None = None) -> dict:
        """Give `item` its id (kept from `previous`, the same item before the change) and a new stamp."""
        item_id = item.get("id") or (previous or {}).get("id")
        if not item_id:
            item_id = f"ITM-{self._next_item_id:06d}"
            self._next_item_id += 1
        item["id"] = item_id
        old = (previous or {}).get("updated_at")
        if old:
            at = bisect.bisect_left(self._item_changes, (old, item_id))
            if at < len(self._item_changes) and self._item_changes[at] == (old, item_id):
                del self._item_changes[at]
        item["updated_at"] = self._stamp()
        self._item_changes.append((item["updated_at"], item_id))  # the newest stamp: the end of the feed
        self._item_codes[item_id] = item["code"]
        item.setdefault("name", item.get("description") or item["code"])
        item.setdefault("status", "active" if item.get("active", True) else "retired")
        return item

    def item_master_put(self, code: str, **fields) -> dict:
        """Create the item `code` or change it: any of MASTER_FIELDS (prices replace the price list).
        Returns the item as the feed lists it."""
        with self.lock:
            previous = self._book.get(code)
            item = dict(previous or {"code": code, "description": fields.get("name") or code, "active": True})
            self._apply_fields(item, fields)
            self._book[code] = self._touch_item(item, previous)
            return self.master_record(item)

    def item_master_change(self, code: str, **fields) -> dict:
        """Change an existing item; `new_code` (or `code`) renames it (its id, stock and history stay).
        KeyError when there is no such item; ValueError for a code already taken."""
        with self.lock:
            previous = self._book[code]
            new_code = fields.pop("new_code", None) or fields.pop("code", None) or code
            if new_code != code and new_code in self._book:
                raise ValueError(f"item code {new_code} is already used by another item")
            item = dict(previous)
            self._apply_fields(item, fields)
            if new_code != code:
                del self._book[code]
                item["code"] = new_code
                for (stock_code, depot) in [k for k in getattr(self, "stock", {}) if k[0] == code]:
                    self.stock[(new_code, depot)] = {**self.stock.pop((stock_code, depot)), "item_code": new_code}
            self._book[new_code] = self._touch_item(item, previous)
            return self.master_record(item)

    @staticmethod
    def _apply_fields(item: dict, fields: dict) -> None:
        for name, value in fields.items():
            if name not in MASTER_FIELDS:
                continue
            if name == "prices":
                value = [normal_price(p) for p in value or ()]
            elif name in ("barcodes", "images"):
                value = [str(v) for v in value or ()]
            elif name == "components":
                value = [{"item_code": c["item_code"], "quantity": int(c.get("quantity") or 1)} for c in value or ()]
            elif name == "attributes":
                value = dict(value or {})
            elif name == "unit_cost" and value not in (None, ""):
                value = str(Decimal(str(value)))
            item[name] = value
        if "status" in fields:
            if fields["status"] not in ("active", "retired"):
                raise ValueError("status is active or retired")
            item["active"] = fields["status"] == "active"
        elif "active" in fields:
            item["status"] = "active" if fields["active"] else "retired"

    def master_record(self, item: dict) -> dict:
        """One item as the item feed lists it: every field, prices with every scope field."""
        barcodes = list(item.get("barcodes") or ())
        if item.get("barcode") and item["barcode"] not in barcodes:
            barcodes.insert(0, item["barcode"])
        prices = []
        for row in item.get("prices") or ():
            try:
                prices.append(normal_price(row))
            except ValueError:
                continue
        return {
            "id": item.get("id", ""), "code": item["code"], "product_key": item.get("product_key") or "",
            "name": item.get("name") or item.get("description") or item["code"],
            "description": item.get("description") or "", "active": bool(item.get("active", True)),
            "status": item.get("status") or ("active" if item.get("active", True) else "retired"),
            "product_type": item.get("product_type") or "", "attributes": dict(item.get("attributes") or {}),
            "tax_code": item.get("tax_code") or "", "unit_cost": item.get("unit_cost"),
            "lead_time_days": item.get("lead_time_days"), "supplier": item.get("supplier") or "",
            "depot": item.get("depot") or "", "barcodes": barcodes, "images": list(item.get("images") or ()),
            "components": [dict(c) for c in item.get("components") or ()], "prices": prices,
            "updated_at": item.get("updated_at"),
        }

    def items_changed_since(self, cursor: str, limit: int) -> tuple[list[dict], str, bool]:
        """The items changed after `cursor`, oldest change first: (records, next cursor, more?)."""
        after = decode_cursor(cursor)
        with self.lock:
            start = bisect.bisect_right(self._item_changes, after) if cursor else 0
            chunk = self._item_changes[start:start + limit]
            rows = [self.master_record(self._book[self._item_codes[item_id]]) for _, item_id in chunk]
            more = start + limit < len(self._item_changes)
        next_cursor = encode_cursor(*chunk[-1]) if chunk else cursor
        return rows, next_cursor, more


# --- demo data ---------------------------------------------------------------------------------

# What the item master adds to the demo stock items (seed_demo): product groups, attributes, tax code,
# default depot. Their prices stay as the demo storefronts sell them (no drift added). The four T-shirts
# are one product (colour and size tell its variants apart), as the demo storefronts already sell them,
# so the first release adopts the storefronts' "Classic tee" instead of meeting its SKUs elsewhere.
DEMO_MASTER = {
    **{f"TEE-BLK-{size}": {"product_key": "TEE", "name": "T-shirt", "product_type": "apparel",
                           "attributes": {"colour": "black", "size": size, "material": "cotton"}, "tax_code": "T1",
                           "depot": "MAIN", "images": [f"https://img.example.com/tee-blk-{size.lower()}.jpg"]}
       for size in ("S", "M", "L")},
    "TEE-WHT-M": {"product_key": "TEE", "name": "T-shirt", "product_type": "apparel",
                  "attributes": {"colour": "white", "size": "M", "material": "cotton"}, "tax_code": "T1",
                  "depot": "MAIN"},
    "MUG-001": {"name": "Enamel mug", "product_type": "homeware",
                "attributes": {"material": "enamel", "colour": "white"},
                "tax_code": "T1", "depot": "MAIN", "barcodes": ["5012345678900"]},
    "HOODIE-GRY-L": {"product_key": "HOODIE-GRY", "name": "Hoodie grey", "product_type": "apparel",
                     "attributes": {"colour": "grey", "size": "L", "material": "cotton"}, "tax_code": "T1",
                     "depot": "MAIN"},
}
SERVICE_TYPE = "service"  # charges and book-keeping lines (shipping, discount, …): items, but never products


def _sock_prices(size: str) -> list[dict]:
    bump = {"S": "0", "M": "0", "L": "0.50"}[size]
    up = lambda amount: str(Decimal(amount) + Decimal(bump))  # noqa: E731
    return [
        {"currency": "GBP", "amount": up("7.50"), "type": "list", "price_list": "UK"},
        {"currency": "GBP", "amount": up("9.00"), "type": "compare_at", "price_list": "UK"},
        {"currency": "GBP", "amount": up("6.75"), "type": "list", "min_quantity": 3, "price_list": "UK-TIERS"},
        {"currency": "GBP", "amount": up("5.00"), "type": "list", "customer_group": "trade", "price_list": "TRADE"},
        {"currency": "EUR", "amount": up("8.50"), "type": "list", "price_list": "EU"},
        {"currency": "EUR", "amount": up("7.99"), "type": "list", "country": "DE", "price_list": "DE-PROMO",
         "valid_from": "2026-01-01T00:00:00+00:00", "valid_until": "2027-01-01T00:00:00+00:00"},
    ]


# Items only the item master knows (seed_catalogue): a product with three variants and scoped, tiered,
# dated prices, and one new item still missing its tax code and lead time (held back by the gate).
DEMO_CATALOGUE = {
    **{f"SOCK-NVY-{size}": {"product_key": "SOCK-NVY", "name": "Wool socks navy", "product_type": "apparel",
                            "description": "Merino socks, navy.", "attributes": {"colour": "navy", "size": size,
                                                                                  "material": "wool"},
                            "tax_code": "T1", "unit_cost": "1.80", "lead_time_days": 14,
                            "supplier": "Northern Textiles", "depot": "MAIN", "prices": _sock_prices(size),
                            "barcodes": [f"50123456790{n}"]}
       for n, size in enumerate(("S", "M", "L"))},
    "CAP-RED": {"name": "Cap red", "product_type": "apparel", "attributes": {"colour": "red"}, "unit_cost": "3.10",
                "supplier": "Northern Textiles", "depot": "MAIN",
                "prices": [{"currency": "GBP", "amount": "12.00", "type": "list"},
                           {"currency": "EUR", "amount": "13.50", "type": "list"}]},
}


class DemoCatalogue:
    """seed_demo's item-master figures and seed_catalogue's extra items, for an app mixing ItemMasterBook."""

    def _enrich_demo_items(self, service_codes) -> None:
        for code, fields in DEMO_MASTER.items():
            if code in self._book:
                self.item_master_put(code, **fields)
        for code in service_codes:
            if code in self._book:
                self.item_master_put(code, product_type=SERVICE_TYPE)

    def seed_catalogue(self) -> None:
        """The item master's own demo items (see DEMO_CATALOGUE), on top of seed_demo."""
        for code, fields in DEMO_CATALOGUE.items():
            self.item_master_put(code, **fields)
