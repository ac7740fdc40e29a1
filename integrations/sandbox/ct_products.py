"""The commercetools sandbox's Products: create, read and update them as the HTTP API does.

A Product holds `masterData` {current, staged, published, hasStagedChanges}; update actions change the
staged data (or both, with `staged: false`), `publish` copies staged to current, `unpublish` takes the
product off the published projections without deleting it. The published projections the rest of the
sandbox serves (`self.products`: product-projections with staged=false, the drift checks' reads) are
kept in step with every write; `product-projections?staged=true` answers from the staged data.

Modelled as the reference states them: ProductDraft (key, name, slug, productType and taxCategory by
key or id, masterVariant and variants with sku, key, attributes, images, prices, `publish`); the update
actions setKey, changeName, changeSlug, setDescription, setTaxCategory, setSku, addVariant, changeMasterVariant,
setAttribute, addExternalImage, setPrices, publish, unpublish; PriceDraft (centPrecision or highPrecision
Money, country, customerGroup and channel references, validFrom / validUntil, tiers). Errors: 409
ConcurrentModification (with currentVersion), 400 DuplicateField (product key, slug per locale, a SKU
anywhere in the project, a variant key within the product), DuplicatePriceScope, InvalidField,
InvalidOperation, ReferencedResourceNotFound, InvalidInput past the documented 500 update actions per
request and 100 variants per product (and 100 prices per variant). Attributes are not checked
against the product type's definitions. Imports nothing of the product.

Queries: `GET /products` and `GET /product-projections?staged=true` take any `where` the predicate module
parses (e.g. `masterVariant(sku in ("A", "B")) or variants(sku in ("A", "B"))`, `id in (…) or key in (…)`),
with input variables (`sku in :skus` and a `var.skus` parameter per value);
one made only of id, key and variant-SKU clauses joined by `or` is answered from the lookups, as the
platform's indexes would, so a catalogue of many thousand products is not scanned per query.

Test knobs: `concurrent_edits[key] = n` makes the next n updates of that product lose a race (another
writer moves the version first), as two workers publishing one product would; `before_create` holds
callables run (once each) when the next `POST /products` arrives, before it is handled: another system
creating a product at that moment.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import uuid
from decimal import ROUND_HALF_EVEN, Decimal

from .currencies import currency_exponent
from .server import Request, Response

MAX_UPDATE_ACTIONS = 500  # per request (HTTP API limits)
MAX_VARIANTS = 100  # per product
MAX_PRICES = 100  # per variant
_KEY = re.compile(r"^[A-Za-z0-9_-]{2,256}$")  # product and variant keys
_SLUG = re.compile(r"^[A-Za-z0-9_-]{2,256}$")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# One clause of a predicate a real index answers without scanning: `id in (…)`, `key = "…"`, or a SKU
# inside `masterVariant(…)` / `variants(…)`. Clauses joined by `or` (see _indexed_ids).
_INDEXED_CLAUSE = re.compile(
    r'\s*(?:(?P<field>id|key)\s*|(?P<variants>masterVariant|variants)\s*\(\s*sku\s*)'
    r'(?:in\s*\((?P<many>(?:"(?:[^"\\]|\\.)*"|[\s,])*)\)|=\s*(?P<one>"(?:[^"\\]|\\.)*"))\s*'
    r'(?(variants)\)\s*)', re.S)
_OR = re.compile(r"\s*or\s+", re.I)
# An input variable of a predicate (`in :skus`, `= :sku`), or a quoted string to step over.
_VARIABLE = re.compile(r'(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<listed>\bin\s+)?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)')
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
PRODUCT_ACTIONS = ("setKey", "changeName", "changeSlug", "setDescription", "setTaxCategory", "setSku", "addVariant",
                   "changeMasterVariant", "setAttribute", "addExternalImage", "setPrices", "publish", "unpublish")


class Refused(Exception):
    """A request the platform answers with an error (raised inside a handler, answered by `answer`)."""

    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra

    def answer(self) -> Response:
        body = {"statusCode": self.status, "message": str(self),
                "errors": [{"code": self.code, "message": str(self), **self.extra}]}
        return Response.json(body, self.status)


def _invalid(field: str, message: str, value=None) -> Refused:
    return Refused(400, "InvalidField", message, field=field, invalidValue=value)


def _whole(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"The value '{value}' is not valid for field '{field}': expected a whole number.", value)
    return value


def _text(value, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(field, f"The value '{value}' is not valid for field '{field}'.", value)
    return value


def _localized(value, field: str, *, required: bool = True) -> dict | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid(field, f"The value for field '{field}' must be a LocalizedString.", value)
    return dict(value)


def _typed_money(draft, field: str) -> dict:
    """A Money / HighPrecisionMoneyDraft as the TypedMoney the API stores (centAmount rounded half even)."""
    if not isinstance(draft, dict):
        raise _invalid(field, f"The value for field '{field}' must be a Money object.", draft)
    currency = draft.get("currencyCode")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise _invalid(f"{field}.currencyCode", f"The value '{currency}' is not a valid currency code.", currency)
    exponent = currency_exponent(currency)
    kind = draft.get("type", "centPrecision")
    if kind == "centPrecision":
        cents = _whole(draft.get("centAmount"), f"{field}.centAmount")
        if draft.get("fractionDigits") not in (None, exponent):
            raise _invalid(f"{field}.fractionDigits", f"{currency} has {exponent} fraction digits.",
                           draft.get("fractionDigits"))
        return {"type": "centPrecision", "currencyCode": currency, "centAmount": cents, "fractionDigits": exponent}
    if kind == "highPrecision":
        precise = _whole(draft.get("preciseAmount"), f"{field}.preciseAmount")
        digits = _whole(draft.get("fractionDigits"), f"{field}.fractionDigits")
        if not exponent < digits <= 20:
            raise _invalid(f"{field}.fractionDigits", f"fractionDigits of a high precision {currency} amount must be "
                           f"greater than {exponent}.", digits)
        cents = int((Decimal(precise).scaleb(exponent - digits)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        if draft.get("centAmount") is not None and _whole(draft["centAmount"], f"{field}.centAmount") != cents:
            raise _invalid(f"{field}.centAmount", "centAmount does not match preciseAmount.", draft["centAmount"])
        return {"type": "highPrecision", "currencyCode": currency, "centAmount": cents, "preciseAmount": precise,
                "fractionDigits": digits}
    raise _invalid(f"{field}.type", f"Unknown money type '{kind}'.", kind)


def _variants(data: dict) -> list[dict]:
    return [data["masterVariant"], *data["variants"]]


def _projection(record: dict, data: dict) -> dict:
    """A ProductProjection: the product's own fields with one of its data sets."""
    projection = {k: copy.deepcopy(v) for k, v in record.items() if k not in ("masterData",)}
    projection.update(copy.deepcopy(data))
    projection["published"] = record["masterData"]["published"]
    projection["hasStagedChanges"] = record["masterData"]["hasStagedChanges"]
    return projection


_PRODUCT_FIELDS = ("id", "version", "key", "productType", "taxCategory", "createdAt", "lastModifiedAt")
_DATA_FIELDS = ("name", "description", "slug", "categories", "categoryOrderHints", "masterVariant", "variants",
                "searchKeywords")


def _data_from_projection(projection: dict) -> dict:
    data = {k: copy.deepcopy(projection[k]) for k in _DATA_FIELDS if k in projection}
    data.setdefault("categories", [])
    data.setdefault("categoryOrderHints", {})
    data.setdefault("variants", [])
    data.setdefault("searchKeywords", {})
    return data


class ProductWrites:
    """Mixed into CommercetoolsSandbox (needs self.lock, self.products, self.channels, self.now(), self._api)."""

    def product_writes_reset(self) -> None:
        """Call under the lock from reset(): the product store and the references products name."""
        self.product_records: dict[str, dict] = {}  # Products (with masterData) by id
        self.concurrent_edits: dict[str, int] = {}  # product key -> updates that lose a race first
        self.before_create: list = []  # callables run once each as the next POST /products arrives
        self.product_types: dict[str, dict] = {}
        self.tax_categories: dict[str, dict] = {}
        self.customer_groups: dict[str, dict] = {}
        # Lookups a large catalogue needs in constant time: key, SKU (staged or current), slug per locale.
        self._by_key: dict[str, str] = {}
        self._by_sku: dict[str, str] = {}
        self._by_slug: dict[tuple[str, str], str] = {}
        self._indexed: dict[str, tuple] = {}  # product id -> the entries it holds in the three lookups
        # The type the seeded products name, and a tax category and customer groups to price and tax by.
        self.create_product_type(key="default", name="Default", id="sandbox-product-type")
        self.create_tax_category(key="standard", name="Standard rate")
        for key in ("vip", "trade"):
            self.create_customer_group(key=key)

    # --- in-process helpers ------------------------------------------------------------------

    def _referenced(self, store: dict, key: str, name: str, id: str | None = None, **extra) -> dict:
        with self.lock:
            moment = self.now()
            resource = {"id": id or str(uuid.uuid4()), "version": 1, "key": key, "name": name or key,
                        "createdAt": moment, "lastModifiedAt": moment, **extra}
            store[resource["id"]] = resource
            return copy.deepcopy(resource)

    def create_product_type(self, *, key: str, name: str = "", id: str | None = None) -> dict:
        return self._referenced(self.product_types, key, name, id, description=name or key, attributes=[])

    def create_tax_category(self, *, key: str, name: str = "") -> dict:
        return self._referenced(self.tax_categories, key, name, rates=[])

    def create_customer_group(self, *, key: str, name: str = "") -> dict:
        return self._referenced(self.customer_groups, key, name, groupName=name or key)

    def product_ref_stores(self) -> dict[str, dict]:
        """typeId -> store, for Reference Expansion."""
        return {"customer-group": self.customer_groups, "tax-category": self.tax_categories,
                "product-type": self.product_types}

    def product_by_key(self, key: str) -> dict | None:
        """The whole Product (masterData current and staged) with this key, or None."""
        with self.lock:
            record = self._record_by(key=key)
            return copy.deepcopy(record) if record else None

    def product_by_sku(self, sku: str) -> dict | None:
        with self.lock:
            pid = self._by_sku.get(sku)
            return copy.deepcopy(self._record(pid)) if pid else None

    def adopt_product(self, pid: str) -> None:
        """A published projection added in-process (add_product) becomes a Product with masterData."""
        with self.lock:
            self._record(pid)

    # --- the store ---------------------------------------------------------------------------

    def _record(self, pid: str) -> dict | None:
        """The Product by id. A product only known as a published projection (add_product, seed_demo) gets
        a record; a projection changed in place (a hand edit in a test) is the current data."""
        record = self.product_records.get(pid)
        projection = self.products.get(pid)
        if record is None:
            if projection is None:
                return None
            data = _data_from_projection(projection)
            record = {k: copy.deepcopy(projection[k]) for k in _PRODUCT_FIELDS if k in projection}
            record["masterData"] = {"current": data, "staged": copy.deepcopy(data), "published": True,
                                    "hasStagedChanges": False}
            record["priceMode"] = "Embedded"
            self.product_records[pid] = record
            self._index(record)
        elif projection is not None and record["masterData"]["published"]:
            current = _data_from_projection(projection)
            record["masterData"]["current"] = current
            if not record["masterData"]["hasStagedChanges"]:
                record["masterData"]["staged"] = copy.deepcopy(current)
        return record

    def _record_by(self, *, key: str | None = None, id: str | None = None) -> dict | None:
        if id is not None:
            return self._record(id)
        pid = self._by_key.get(key)
        return self._record(pid) if pid else None

    def _index(self, record: dict) -> None:
        pid = record["id"]
        for lookup, entries in zip((self._by_key, self._by_sku, self._by_slug), self._indexed.pop(pid, ((), (), ()))):
            for entry in entries:
                if lookup.get(entry) == pid:
                    del lookup[entry]
        datas = [d for d in (record["masterData"].get("current"), record["masterData"].get("staged")) if d]
        keys = [record["key"]] if record.get("key") else []
        skus = {v["sku"] for d in datas for v in _variants(d) if v.get("sku")}
        slugs = {(locale, slug) for d in datas for locale, slug in (d.get("slug") or {}).items()}
        for lookup, entries in ((self._by_key, keys), (self._by_sku, skus), (self._by_slug, slugs)):
            for entry in entries:
                lookup[entry] = pid
        self._indexed[pid] = (tuple(keys), tuple(skus), tuple(slugs))

    def _sync(self, record: dict) -> None:
        """Keep the published projections (what product-projections?staged=false serves) and the lookups in step."""
        self._index(record)
        if record["masterData"]["published"]:
            self.products[record["id"]] = _projection(record, record["masterData"]["current"])
        else:
            self.products.pop(record["id"], None)

    def _all_records(self) -> list[dict]:
        return [r for r in (self._record(pid) for pid in list(self.product_records)) if r]

    def _resolve(self, ref, typeId: str, field: str) -> dict:
        """A ResourceIdentifier (id or key) as the Reference the API stores, or ReferencedResourceNotFound."""
        if not isinstance(ref, dict) or ref.get("typeId", typeId) != typeId or not (ref.get("id") or ref.get("key")):
            raise _invalid(field, f"The value for field '{field}' must be a ResourceIdentifier to a {typeId}.", ref)
        store = {"channel": self.channels, **self.product_ref_stores()}[typeId]
        if ref.get("id"):
            found = store.get(ref["id"])
        else:
            found = next((r for r in store.values() if r.get("key") == ref["key"]), None)
        if found is None:
            by, value = ("id", ref["id"]) if ref.get("id") else ("key", ref["key"])
            raise Refused(400, "ReferencedResourceNotFound",
                          f"The referenced object of type '{typeId}' with {by} '{value}' was not found. It either "
                          "doesn't exist, or it can't be accessed from this endpoint.", typeId=typeId, **{by: value})
        return {"typeId": typeId, "id": found["id"]}

    # --- drafts ------------------------------------------------------------------------------

    def _price(self, draft, field: str) -> dict:
        if not isinstance(draft, dict):
            raise _invalid(field, f"The value for field '{field}' must be a PriceDraft.", draft)
        price = {"id": str(uuid.uuid4()), "value": _typed_money(draft.get("value"), f"{field}.value")}
        if draft.get("key") is not None:
            price["key"] = _text(draft["key"], f"{field}.key")
        if draft.get("country") is not None:
            if not isinstance(draft["country"], str) or not _COUNTRY.match(draft["country"]):
                raise _invalid(f"{field}.country", f"'{draft['country']}' is not a country code.", draft["country"])
            price["country"] = draft["country"]
        if draft.get("customerGroup") is not None:
            price["customerGroup"] = self._resolve(draft["customerGroup"], "customer-group", f"{field}.customerGroup")
        if draft.get("channel") is not None:
            price["channel"] = self._resolve(draft["channel"], "channel", f"{field}.channel")
        for name in ("validFrom", "validUntil"):
            if draft.get(name) is not None:
                price[name] = _text(draft[name], f"{field}.{name}")
        if price.get("validFrom") and price.get("validUntil") and price["validFrom"] >= price["validUntil"]:
            raise _invalid(f"{field}.validUntil", "validUntil must be after validFrom.", price["validUntil"])
        tiers = draft.get("tiers")
        if tiers is not None:
            if not isinstance(tiers, list):
                raise _invalid(f"{field}.tiers", "tiers must be a list.", tiers)
            price["tiers"] = []
            seen = set()
            for n, tier in enumerate(tiers):
                where = f"{field}.tiers[{n}]"
                if not isinstance(tier, dict):
                    raise _invalid(where, "A tier must be a PriceTierDraft.", tier)
                minimum = _whole(tier.get("minimumQuantity"), f"{where}.minimumQuantity")
                if minimum < 2 or minimum in seen:
                    raise _invalid(f"{where}.minimumQuantity", "minimumQuantity must be at least 2 and unique within "
                                   "the price's tiers.", minimum)
                seen.add(minimum)
                value = _typed_money(tier.get("value"), f"{where}.value")
                if value["currencyCode"] != price["value"]["currencyCode"]:
                    raise _invalid(f"{where}.value.currencyCode", "A tier's currency must be the price's.",
                                   value["currencyCode"])
                price["tiers"].append({"minimumQuantity": minimum, "value": value})
        return price

    def _prices(self, drafts, field: str) -> list[dict]:
        if not isinstance(drafts, list):
            raise _invalid(field, "prices must be a list.", drafts)
        if len(drafts) > MAX_PRICES:
            raise Refused(400, "MaxResourceLimitExceeded", f"A variant can have at most {MAX_PRICES} prices.",
                          exceededResource="price")
        prices = [self._price(d, f"{field}[{n}]") for n, d in enumerate(drafts)]
        scopes = set()
        for price in prices:
            scope = (price["value"]["currencyCode"], price.get("country"), (price.get("customerGroup") or {}).get("id"),
                     (price.get("channel") or {}).get("id"), price.get("validFrom"), price.get("validUntil"))
            if scope in scopes:
                raise Refused(400, "DuplicatePriceScope", "Duplicate price scope: "
                              f"currency {scope[0]}, country {scope[1]}, customer group {scope[2]}, channel {scope[3]}, "
                              f"valid from {scope[4]} until {scope[5]}.", conflictingPrices=[])
            scopes.add(scope)
        return prices

    def _image(self, draft, field: str) -> dict:
        if not isinstance(draft, dict):
            raise _invalid(field, "An image must be an Image object.", draft)
        dimensions = draft.get("dimensions")
        if not isinstance(dimensions, dict):
            raise _invalid(f"{field}.dimensions", "An image needs its dimensions {w, h}.", dimensions)
        image = {"url": _text(draft.get("url"), f"{field}.url"),
                 "dimensions": {"w": _whole(dimensions.get("w"), f"{field}.dimensions.w"),
                                "h": _whole(dimensions.get("h"), f"{field}.dimensions.h")}}
        if draft.get("label") is not None:
            image["label"] = _text(draft["label"], f"{field}.label")
        return image

    @staticmethod
    def _attributes(drafts, field: str) -> list[dict]:
        if drafts is None:
            return []
        if not isinstance(drafts, list):
            raise _invalid(field, "attributes must be a list.", drafts)
        attributes = []
        for n, attribute in enumerate(drafts):
            if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str) or "value" not in attribute:
                raise _invalid(f"{field}[{n}]", "An attribute needs a name and a value.", attribute)
            attributes = [a for a in attributes if a["name"] != attribute["name"]]
            attributes.append({"name": attribute["name"], "value": copy.deepcopy(attribute["value"])})
        return attributes

    def _variant(self, draft, field: str, variant_id: int) -> dict:
        if not isinstance(draft, dict):
            raise _invalid(field, "A variant must be a ProductVariantDraft.", draft)
        variant = {"id": variant_id, "prices": self._prices(draft.get("prices") or [], f"{field}.prices"),
                   "images": [self._image(d, f"{field}.images[{n}]") for n, d in enumerate(draft.get("images") or [])],
                   "attributes": self._attributes(draft.get("attributes"), f"{field}.attributes"), "assets": []}
        if draft.get("sku") is not None:
            variant["sku"] = _text(draft["sku"], f"{field}.sku")
        if draft.get("key") is not None:
            variant["key"] = _text(draft["key"], f"{field}.key")
            if not _KEY.match(variant["key"]):
                raise _invalid(f"{field}.key", f"'{variant['key']}' is not a valid key.", variant["key"])
        return variant

    def _check_unique(self, record_id: str | None, key, data: dict) -> None:
        """DuplicateField for a product key, a slug (per locale), a SKU in the project, a variant key."""
        def other(lookup: dict, entry) -> bool:
            return lookup.get(entry) not in (None, record_id)

        if key is not None and other(self._by_key, key):
            raise Refused(400, "DuplicateField", f"A duplicate value '\"{key}\"' exists for field 'key'.",
                          field="key", duplicateValue=key)
        for locale, slug in (data.get("slug") or {}).items():
            if other(self._by_slug, (locale, slug)):
                raise Refused(400, "DuplicateField", f"A duplicate value '\"{slug}\"' exists for field "
                              f"'slug.{locale}'.", field=f"slug.{locale}", duplicateValue=slug)
        skus = [v["sku"] for v in _variants(data) if v.get("sku")]
        keys = [v["key"] for v in _variants(data) if v.get("key")]
        for values, name in ((skus, "sku"), (keys, "variant key")):
            repeated = next((v for v in values if values.count(v) > 1), None)
            if repeated:
                raise Refused(400, "DuplicateField", f"A duplicate value '\"{repeated}\"' exists for field "
                              f"'{'sku' if name == 'sku' else 'key'}'.", field="sku" if name == "sku" else "variants.key",
                              duplicateValue=repeated)
        clash = next((s for s in skus if other(self._by_sku, s)), None)
        if clash:
            raise Refused(400, "DuplicateField", f"A duplicate value '\"{clash}\"' exists for field 'sku'.",
                          field="sku", duplicateValue=clash)
        if len(_variants(data)) > MAX_VARIANTS:
            raise Refused(400, "MaxResourceLimitExceeded", f"A product can have at most {MAX_VARIANTS} variants.",
                          exceededResource="product-variant")

    def create_product_from_draft(self, draft: dict) -> dict:
        """POST /products: a ProductDraft in, the Product out (raises Refused)."""
        from .commercetools import InvalidJson

        for name in ("productType", "name", "slug"):
            if draft.get(name) is None:
                raise InvalidJson(f"Missing required value: {name}.")
        with self.lock:
            key = draft.get("key")
            if key is not None and (not isinstance(key, str) or not _KEY.match(key)):
                raise _invalid("key", f"'{key}' is not a valid key (2 to 256 of A-Z a-z 0-9 _ -).", key)
            slug = _localized(draft["slug"], "slug")
            for locale, value in slug.items():
                if not _SLUG.match(value):
                    raise _invalid(f"slug.{locale}", f"'{value}' is not a valid slug.", value)
            drafts = [draft.get("masterVariant") or {}, *(draft.get("variants") or [])]
            variants = [self._variant(d, "masterVariant" if n == 0 else f"variants[{n - 1}]", n + 1)
                        for n, d in enumerate(drafts)]
            data = {"name": _localized(draft["name"], "name"), "categories": [], "categoryOrderHints": {},
                    "slug": slug, "masterVariant": variants[0], "variants": variants[1:], "searchKeywords": {}}
            if draft.get("description") is not None:
                data["description"] = _localized(draft["description"], "description")
            self._check_unique(None, key, data)
            moment = self.now()
            record = {"id": str(uuid.uuid4()), "version": 1,
                      "productType": self._resolve(draft["productType"], "product-type", "productType"),
                      "masterData": {"current": copy.deepcopy(data), "staged": data, "published": bool(draft.get("publish")),
                                     "hasStagedChanges": False},
                      "priceMode": "Embedded", "createdAt": moment, "lastModifiedAt": moment}
            if key is not None:
                record["key"] = key
            if draft.get("taxCategory") is not None:
                record["taxCategory"] = self._resolve(draft["taxCategory"], "tax-category", "taxCategory")
            self.product_records[record["id"]] = record
            self._sync(record)
            return copy.deepcopy(record)

    # --- update actions ----------------------------------------------------------------------

    @staticmethod
    def _find_variant(data: dict, action: dict) -> dict:
        if action.get("variantId") is not None:
            found = next((v for v in _variants(data) if v["id"] == action["variantId"]), None)
            label = f"id '{action['variantId']}'"
        elif action.get("sku") is not None:
            found = next((v for v in _variants(data) if v.get("sku") == action["sku"]), None)
            label = f"SKU '{action['sku']}'"
        else:
            raise Refused(400, "InvalidOperation", f"{action['action']}: either variantId or sku is required.")
        if found is None:
            raise Refused(400, "InvalidOperation", f"A variant with {label} does not exist.")
        return found

    def _apply(self, record: dict, action: dict) -> None:
        name = action["action"]
        master = record["masterData"]
        if name == "publish":
            master["current"] = copy.deepcopy(master["staged"])
            master["published"] = True
            master["hasStagedChanges"] = False
            return
        if name == "unpublish":
            if not master["published"]:
                raise Refused(400, "InvalidOperation", "Cannot unpublish a product that is not published.")
            master["published"] = False
            return
        if name == "setKey":  # no key (or null) removes it; a key another product holds is DuplicateField
            key = action.get("key")
            if key is None:
                record.pop("key", None)
            elif not isinstance(key, str) or not _KEY.match(key):
                raise _invalid("key", f"'{key}' is not a valid key (2 to 256 of A-Z a-z 0-9 _ -).", key)
            else:
                record["key"] = key
            return
        if name == "setTaxCategory":
            if action.get("taxCategory") is None:
                record.pop("taxCategory", None)
            else:
                record["taxCategory"] = self._resolve(action["taxCategory"], "tax-category", "taxCategory")
            return
        if name not in PRODUCT_ACTIONS:
            raise Refused(400, "InvalidInput", f"Unknown update action '{name}' for products.")
        staged_only = action.get("staged", True) is not False
        targets = [master["staged"]] if staged_only else [master["staged"], master["current"]]
        if staged_only:
            master["hasStagedChanges"] = True
        for data in targets:
            self._apply_to_data(record, data, action)

    def _apply_to_data(self, record: dict, data: dict, action: dict) -> None:
        name = action["action"]
        if name == "changeName":
            data["name"] = _localized(action.get("name"), "name")
        elif name == "changeSlug":
            data["slug"] = _localized(action.get("slug"), "slug")
        elif name == "setDescription":
            description = _localized(action.get("description"), "description", required=False)
            if description is None:
                data.pop("description", None)
            else:
                data["description"] = description
        elif name == "setSku":
            variant = self._find_variant(data, {"action": name, "variantId": action.get("variantId")})
            if action.get("sku") is None:
                variant.pop("sku", None)
            else:
                variant["sku"] = _text(action["sku"], "sku")
        elif name == "addVariant":
            next_id = max([v["id"] for v in _variants(data)] + [v["id"] for v in _variants(
                record["masterData"]["current"])]) + 1
            data["variants"].append(self._variant(action, "addVariant", next_id))
        elif name == "changeMasterVariant":
            variant = self._find_variant(data, action)
            if variant is not data["masterVariant"]:
                data["variants"] = [data["masterVariant"], *[v for v in data["variants"] if v is not variant]]
                data["masterVariant"] = variant
        elif name == "setAttribute":
            variant = self._find_variant(data, action)
            if not isinstance(action.get("name"), str):
                raise _invalid("name", "setAttribute needs the attribute's name.", action.get("name"))
            variant["attributes"] = [a for a in variant["attributes"] if a["name"] != action["name"]]
            if action.get("value") is not None:
                variant["attributes"].append({"name": action["name"], "value": copy.deepcopy(action["value"])})
        elif name == "addExternalImage":
            variant = self._find_variant(data, action)
            image = self._image(action.get("image"), "image")
            if any(i["url"] == image["url"] for i in variant["images"]):
                raise Refused(400, "InvalidOperation", f"The variant already has the image {image['url']}.")
            variant["images"].append(image)
        elif name == "setPrices":
            variant = self._find_variant(data, action)
            variant["prices"] = self._prices(action.get("prices"), "prices")

    def update_product(self, record_id: str, version: int, actions: list[dict]) -> dict:
        """POST /products/{id}: the actions applied all or none, at `version` (raises Refused)."""
        with self.lock:
            record = self._record(record_id)
            if len(actions) > MAX_UPDATE_ACTIONS:
                raise Refused(400, "InvalidInput", f"At most {MAX_UPDATE_ACTIONS} update actions are allowed per "
                              f"request; this one has {len(actions)}.")
            pending = self.concurrent_edits.get(record.get("key") or "", 0)
            if pending:  # another writer got there first
                self.concurrent_edits[record["key"]] = pending - 1
                self._bump_product(record)
            if version != record["version"]:
                raise Refused(409, "ConcurrentModification",
                              f"Object {record['id']} has a different version than expected. Expected: {version} - "
                              f"Actual: {record['version']}.", currentVersion=record["version"])
            updated = copy.deepcopy(record)
            for action in actions:
                self._apply(updated, action)
            self._check_unique(updated["id"], updated.get("key"), updated["masterData"]["staged"])
            if updated["masterData"]["staged"] == updated["masterData"]["current"]:
                updated["masterData"]["hasStagedChanges"] = False
            record.clear()
            record.update(updated)
            self._bump_product(record)
            self._sync(record)
            return copy.deepcopy(record)

    def _bump_product(self, record: dict) -> None:
        record["version"] += 1
        record["lastModifiedAt"] = self.now()
        if record["id"] in self.products:
            self.products[record["id"]]["version"] = record["version"]
            self.products[record["id"]]["lastModifiedAt"] = record["lastModifiedAt"]

    # --- routes ------------------------------------------------------------------------------

    def register_product_routes(self) -> None:
        """Before the generic resource routes, so `products` and `product-projections?staged=true` land here."""
        project = r"/(?P<project>[^/_][^/]*)"
        base = f"{project}/products"
        self.route("GET", base, self._api(self._query_products, "products"))
        self.route("POST", base, self._api(self._create_product, "products"))
        for method, handler in (("GET", self._get_product), ("POST", self._update_product)):
            self.route(method, f"{base}/key=(?P<lookup>[^/]+)", self._api(handler, "products", "key"))
            self.route(method, f"{base}/(?P<id>[^/]+)", self._api(handler, "products", "id"))
        self.route("GET", f"{project}/product-projections", self._api(self._query_projections, "product-projections"))

    def _answering(self, handler):
        try:
            return handler()
        except Refused as refused:
            return refused.answer()

    def _found(self, request: Request, by: str) -> dict:
        value = request.params["lookup"] if by == "key" else request.params["id"]
        record = self._record_by(key=value) if by == "key" else self._record_by(id=value)
        if record is None:
            label = "key" if by == "key" else "ID"
            raise Refused(404, "ResourceNotFound", f"The Resource with {label} '{value}' was not found.")
        return record

    def _expanded(self, request: Request, resource: dict) -> dict:
        return self._expand(resource, request.query.get("expand", []))

    def _indexed_ids(self, wheres: list[str]) -> list[str] | None:
        """The ids of the products a lone predicate can match, from the lookups, when it is made only of
        `id` / `key` / `masterVariant(sku …)` / `variants(sku …)` clauses joined by `or` (what a publisher
        asks: products by key or id, the holders of some SKUs); else None (every product is tested).
        The candidates are a superset (the SKU lookup holds staged and current SKUs): the query's own
        predicate still decides, so the answer is the one a scan would give, without the scan."""
        if len(wheres) != 1:
            return None
        text, pos, ids = wheres[0], 0, []
        while True:
            match = _INDEXED_CLAUSE.match(text, pos)
            if not match:
                return None
            inside = match["many"] if match["many"] is not None else match["one"]
            values = [re.sub(r"\\(.)", r"\1", v) for v in _QUOTED.findall(inside)]
            lookup = self._by_sku if match["variants"] else self._by_key if match["field"] == "key" else None
            ids += [lookup.get(v) for v in values] if lookup is not None else values
            pos = match.end()
            if pos >= len(text.rstrip()):
                return [i for i in dict.fromkeys(ids) if i]
            joined = _OR.match(text, pos)
            if not joined:
                return None
            pos = joined.end()

    @staticmethod
    def _with_variables(request: Request) -> Request:
        """The request with its predicates' input variables (`sku in :skus`, each value a `var.skus`
        parameter, repeated for a list) written out as literals, as the platform reads them. An
        unknown variable is left in place, so the predicate is refused as malformed."""
        wheres = request.query.get("where", [])
        if not any(":" in w for w in wheres):
            return request

        def literal(match: re.Match) -> str:
            if match.group("quoted"):
                return match.group(0)
            values = request.query.get(f"var.{match.group('name')}")
            if not values:
                return match.group(0)
            listed = ", ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
            return f"{match.group('listed')}({listed})" if match.group("listed") else listed

        written = [_VARIABLE.sub(literal, w) for w in wheres]
        return dataclasses.replace(request, query={**request.query, "where": written})

    def _candidates(self, request: Request) -> list[dict]:
        """The Products the query has to test: those the lookups name, or all of them."""
        ids = self._indexed_ids(request.query.get("where", []))
        if ids is None:
            return self._all_records()
        return [r for r in (self._record(i) for i in ids) if r]

    def _query_products(self, request: Request, resource: str) -> Response:
        request = self._with_variables(request)
        with self.lock:
            originals = self.products
            try:
                # The generic query over whole Products: swap the store the query reads for a moment. A
                # query by keys or ids (what a publisher asks before a batch) is answered from the lookups,
                # as an index would, instead of testing every product.
                self.products = {r["id"]: r for r in self._candidates(request)}
                return self.query(request, "product-projections")
            finally:
                self.products = originals

    def _query_projections(self, request: Request, resource: str) -> Response:
        request = self._with_variables(request)
        if request.arg("staged", "false").lower() != "true":
            return self.query(request, resource)
        with self.lock:
            originals = self.products
            try:
                self.products = {r["id"]: _projection(r, r["masterData"]["staged"]) for r in self._candidates(request)}
                return self.query(request, resource)
            finally:
                self.products = originals

    def _get_product(self, request: Request, resource: str, by: str) -> Response:
        def answer():
            with self.lock:
                return Response.json(self._expanded(request, copy.deepcopy(self._found(request, by))))
        return self._answering(answer)

    def _create_product(self, request: Request, resource: str) -> Response:
        from .commercetools import _json_object

        draft = _json_object(request)
        while self.before_create:
            self.before_create.pop(0)()
        return self._answering(lambda: Response.json(self._expanded(request, self.create_product_from_draft(draft)), 201))

    def _update_product(self, request: Request, resource: str, by: str) -> Response:
        from .commercetools import InvalidJson, _field, _json_object

        body = _json_object(request)
        version = _field(body, "version", int)
        actions = _field(body, "actions", list)
        for n, action in enumerate(actions):
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                raise InvalidJson(f"actions[{n}]: expected an object with an 'action' name.")

        def answer():
            with self.lock:
                record = self._found(request, by)
                return Response.json(self._expanded(request, self.update_product(record["id"], version, actions)))
        return self._answering(answer)
