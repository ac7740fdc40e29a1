"""Publishing the item master to commercetools: create-or-update (or adopt) each Product, with its variants,
attributes, images and embedded prices, then publish it (or unpublish a retired one; nothing is ever
deleted). Storefront capability PUBLISH_PRODUCTS (integrations/connectors/catalogue.py).

Products are read PREFETCH_KEYS at a time, the price and tax category references expanded to their keys:
those with a storefront id (recorded when Ledgerline created or adopted them) by id, `GET /products?where=
id in (…)`, the others by key, `GET /products?where=key in (…)` (a retry after a conflict reads the one
product by id, or `GET /products/key={key}`).

Adoption. A product found neither way may already be in the project, made by hand or by an earlier
integration, under another key or none. Its SKUs are looked up first, LOOKUP_SKUS to a query over the
staged projections (`GET /product-projections?staged=true&where=masterVariant(sku in :skus) or
variants(sku in :skus)&var.skus=…&var.skus=…`: `in` is the documented efficient form, the input variable
sends each SKU once, and one SKU is on one product at most, so one page of the 500 results a query may
return holds every answer). No product holds them: `POST /products` with a
ProductDraft (`publish: true`). One product holds them all and nothing else: it is adopted and updated by
id (PublishResult.adopted; its product and variant ids stay, its variants are matched by SKU); with no
key it gets ours (`setKey`), with a key of its own it keeps it (other systems may address it by that key)
and the flow records its id. Otherwise (the SKUs on several products, or beside SKUs this product does
not have) nothing is written and the result is a `conflict` naming each product and its SKUs. A create
answered DuplicateField on a SKU (another system created a product holding it since the lookup) looks
again and adopts or reports the conflict the same way. A retired product found by neither is not
looked for by SKU: it was never ours, so it is not taken over only to be taken off sale. Requests: a
first load adds one lookup per CHUNK_PRODUCTS absent products of a call (the catalogue flow hands over
its `catalogue_batch_size`, 50 by default), or per LOOKUP_SKUS of their SKUs when they have more (the
URL's bound): 25,000 products of up to 4 variants in the flow's batches of 50, 500 lookups beside the
25,000 creates and 500 key reads.

A present product gets `POST /products/{id}` at the product's version with only the update actions the
difference needs: setKey (adoption only), changeName, setDescription, setTaxCategory, setSku (a SKU
renamed in the ERP: the variant is found by its key, which is the ERP item id), addVariant,
changeMasterVariant, setAttribute, addExternalImage, setPrices (per variant, by SKU), then `publish`
when anything changed or staged changes wait, or `unpublish` for a retired product. Variants, attributes
and images the ERP no longer states are left as they are (never deleted). A second publish of unchanged
data sends nothing but the read.

Prices. Each ItemPrice of type "list" becomes a PriceDraft scoped by currency, country, customer group and
channel (ResourceIdentifiers by key) and validFrom / validUntil; an ItemPrice with min_quantity > 1 is a
`tiers` entry of the base price of the same scope (a tier without such a base price is refused: the
ERP's price list is incomplete). Money is centPrecision {currencyCode, centAmount}, or highPrecision
{type, currencyCode, preciseAmount, fractionDigits} when the connection says `price_precision: "high"` or
the amount has more decimals than the currency (fractionDigits: the setting `high_precision_digits`, else
the currency's plus one, or more when the amount needs it). Decimal to integer units, never a float.
Compare-at prices are skipped: commercetools has no compare-at price, and mapping one to a custom
field would need a Type on every price (not trivially possible), so only list prices are published.

Conflicts and failures. A 409 ConcurrentModification re-reads the product and recomputes the actions
(CONFLICT_ATTEMPTS times), then the product's PublishResult is retryable. 429 and 5xx are retried by the
client (its backoff and Retry-After); what is still failing comes back as a retryable result. A 400
(validation) is a permanent result with commercetools' message. A create that meets DuplicateField on
the key (an earlier attempt created it after all) goes on as an update, so no second product is made;
on a SKU, it goes through adoption (above).

Limits (the HTTP API's documented limits, api/limits): 500 update actions per request (longer lists are
sent as several requests, each at the version the previous one returned, `publish` last); 100
variants per product and 100 prices per variant (refused here before sending); 500 results per query;
the Import API takes 20 resources per request (the path not taken: it is asynchronous, needs the import
containers and its own scope, and reports per-resource state later, where this one answers each
product at once). commercetools documents no request-rate or concurrency limit for the HTTP API; its
performance guidance asks for parallel requests and backoff on 502/503. So products are sent from a
bounded pool of CONCURRENCY threads through the one client (one token, its retries and pacing, its
request counters); each thread takes a chunk of CHUNK_PRODUCTS products, reads them in queries of
PREFETCH_KEYS and writes them one by one, so two writers of ours never race on one product's version.
Requests: a first load, one create per product, one read per PREFETCH_KEYS products and the SKU lookups
(above); a change, one update per changed product and one read per PREFETCH_KEYS products; an
unchanged product, its share of the read only.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import quote

from integrations.domain import currency_exponent

from ..base import ConnectorError, NotFound, PermanentError, TransientError
from ..catalogue import ItemPrice, Product, ProductVariant, PublishResult
from . import CommercetoolsClient, ConcurrentModification, _quote

log = logging.getLogger("ledgerline.commercetools.catalogue")

# The HTTP API's documented limits (docs: api/limits), for this module and for the benchmark to print.
MAX_UPDATE_ACTIONS = 500  # update actions per request
MAX_VARIANTS_PER_PRODUCT = 100
MAX_PRICES_PER_VARIANT = 100
MAX_QUERY_LIMIT = 500  # results per query page
IMPORT_API_RESOURCES_PER_REQUEST = 20  # the Import API's batch size (not used: see the docstring)
DOCUMENTED_LIMITS = {
    "update_actions_per_request": MAX_UPDATE_ACTIONS,
    "variants_per_product": MAX_VARIANTS_PER_PRODUCT,
    "prices_per_variant": MAX_PRICES_PER_VARIANT,
    "query_results_per_page": MAX_QUERY_LIMIT,
    "import_api_resources_per_request": IMPORT_API_RESOURCES_PER_REQUEST,
    "request_rate": None,  # none documented for the HTTP API
}
# Our own bound (commercetools documents none): products in flight at once through one client.
CONCURRENCY = 8
CONFLICT_ATTEMPTS = 4  # 409 ConcurrentModification: re-read and retry this many times, then retryable
# Products read in one query (`key in (…)`) before they are written: one request per chunk instead of one
# per product. Our choice, well inside the 500 results a query may return, and short enough a URL (about
# 3 KB of keys) for any proxy on the way.
PREFETCH_KEYS = 50
# SKUs looked up in one query (adoption, below). The URL is the bound: commercetools' own tools split
# predicates at 150 ids because the platform's load balancer refuses longer URLs (commercetools/nodejs#1379),
# about 7 KB. The SKUs go as one input variable (`sku in :skus`, a `var.skus` parameter per SKU, as the
# SDKs send predicate variables), so each is sent once although the predicate names it twice: 250 SKUs of
# ordinary length, or LOOKUP_CHARS of parameters whatever their length. A SKU is on one product at most, so
# the answer holds at most as many products as SKUs, inside the 500 results of one page.
LOOKUP_SKUS = 250
LOOKUP_CHARS = 6000
SKU_PREDICATE = "masterVariant(sku in :skus) or variants(sku in :skus)"
# Products one thread locates, then writes, together: its key (or id) reads go PREFETCH_KEYS at a time, the
# SKUs of those not found LOOKUP_SKUS at a time, so a first load of single-variant products costs one SKU
# lookup per CHUNK_PRODUCTS products.
CHUNK_PRODUCTS = 2 * PREFETCH_KEYS
_UNREAD = object()

_KEY_OK = re.compile(r"^[A-Za-z0-9_-]{2,256}$")
_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]+")
EXPAND = tuple(f"masterData.staged.{where}.prices[*].{ref}" for where in ("masterVariant", "variants[*]")
               for ref in ("customerGroup", "channel")) + ("taxCategory",)
# The same references on a ProductProjection (the adoption lookup reads staged projections).
PROJECTION_EXPAND = tuple(e.replace("masterData.staged.", "") for e in EXPAND)


class CatalogueRefused(PermanentError):
    """The product cannot be published as the ERP states it (a limit, a tier without its base price)."""


def ct_key(value: str) -> str:
    """A commercetools key ([A-Za-z0-9_-]{2,256}) for an ERP key or item id: as it is when it fits, else
    its allowed characters and a short digest of the original (so two originals never meet)."""
    value = str(value)
    if _KEY_OK.match(value):
        return value
    digest = hashlib.sha1(value.encode()).hexdigest()[:10]
    return f"{_KEY_BAD.sub('-', value).strip('-')[:200]}-{digest}".lstrip("-")


def _slug(key: str) -> str:
    return ct_key(key.lower())


class _Options:
    """The connection's catalogue settings (Connection.settings), with their defaults."""

    def __init__(self, settings: dict | None):
        settings = settings or {}
        self.language = settings.get("language") or "en"
        self.product_type = settings.get("product_type") or ""
        self.high_precision = str(settings.get("price_precision") or "cent").lower() == "high"
        self.high_digits = settings.get("high_precision_digits")
        dimensions = settings.get("image_dimensions") or {}
        # The ERP states an image's URL only; commercetools requires dimensions: the configured ones, else 0×0.
        self.image_dimensions = {"w": int(dimensions.get("w", 0)), "h": int(dimensions.get("h", 0))}


# --- money and prices ------------------------------------------------------------------------


def _digits(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def money_draft(amount: Decimal, currency: str, options: _Options) -> dict:
    """centPrecision Money, or HighPrecisionMoneyDraft when configured or when the amount needs it."""
    amount = Decimal(amount)
    currency = currency.upper()
    exponent = currency_exponent(currency)
    needed = _digits(amount)
    if not options.high_precision and needed <= exponent:
        return {"type": "centPrecision", "currencyCode": currency, "centAmount": int(amount.scaleb(exponent))}
    digits = max(int(options.high_digits or 0), exponent + 1, needed)
    return {"type": "highPrecision", "currencyCode": currency, "preciseAmount": int(amount.scaleb(digits)),
            "fractionDigits": digits}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _scope(price: ItemPrice) -> tuple:
    return (price.currency.upper(), price.country.upper(), price.customer_group, price.channel, price.valid_from,
            price.valid_until)


def price_drafts(prices, options: _Options) -> list[dict]:
    """The variant's list prices as PriceDrafts: one per scope, its quantity tiers inside it."""
    bases: dict[tuple, ItemPrice] = {}
    tiers: dict[tuple, list[ItemPrice]] = {}
    for price in prices:
        if price.type != "list":
            continue  # compare_at: commercetools has none (see the module docstring)
        if price.min_quantity > 1:
            tiers.setdefault(_scope(price), []).append(price)
        elif _scope(price) in bases and bases[_scope(price)].amount != price.amount:
            raise CatalogueRefused(f"two {price.currency} prices of one scope: {bases[_scope(price)].amount} and "
                                   f"{price.amount}")
        else:
            bases[_scope(price)] = price
    for scope, listed in tiers.items():
        if scope not in bases:
            what = ", ".join(p for p in (scope[1], scope[2] and f"customer group {scope[2]}",
                                         scope[3] and f"channel {scope[3]}") if p)
            raise CatalogueRefused(f"a {scope[0]} tier from {listed[0].min_quantity} units{' (' + what + ')' if what else ''}"
                                   " has no base price of that scope")
    drafts = []
    for scope, price in bases.items():
        draft: dict = {"value": money_draft(price.amount, price.currency, options)}
        if price.country:
            draft["country"] = price.country.upper()
        if price.customer_group:
            draft["customerGroup"] = {"typeId": "customer-group", "key": price.customer_group}
        if price.channel:
            draft["channel"] = {"typeId": "channel", "key": price.channel}
        if price.valid_from:
            draft["validFrom"] = _iso(price.valid_from)
        if price.valid_until:
            draft["validUntil"] = _iso(price.valid_until)
        listed = sorted(tiers.get(scope, ()), key=lambda p: p.min_quantity)
        if listed:
            draft["tiers"] = [{"minimumQuantity": p.min_quantity, "value": money_draft(p.amount, p.currency, options)}
                              for p in listed]
        drafts.append(draft)
    if len(drafts) > MAX_PRICES_PER_VARIANT:
        raise CatalogueRefused(f"{len(drafts)} prices on one variant; commercetools takes {MAX_PRICES_PER_VARIANT}")
    return drafts


def _amount(value: dict) -> tuple:
    """A stored TypedMoney (or a draft) as (currency, kind, exact amount) for comparing."""
    kind = value.get("type", "centPrecision")
    currency = value["currencyCode"]
    if kind == "highPrecision":
        return currency, kind, Decimal(value["preciseAmount"]).scaleb(-int(value["fractionDigits"]))
    return currency, kind, Decimal(value["centAmount"]).scaleb(-currency_exponent(currency))


def _ref_key(ref: dict | None, keys: dict[str, str]) -> str:
    if not ref:
        return ""
    return ref.get("key") or (ref.get("obj") or {}).get("key") or keys.get(ref.get("id", ""), ref.get("id", ""))


def _canonical(price: dict, channel_keys: dict[str, str]) -> tuple:
    """A stored Price or a PriceDraft, comparable: what it charges, in which scope, with which tiers."""
    tiers = tuple(sorted((int(t["minimumQuantity"]), _amount(t["value"])) for t in price.get("tiers") or ()))
    return (_amount(price["value"]), price.get("country") or "", _ref_key(price.get("customerGroup"), {}),
            _ref_key(price.get("channel"), channel_keys), _instant(price.get("validFrom")),
            _instant(price.get("validUntil")), tiers)


def _instant(value: str | None):
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


def _same_prices(stored: list[dict], drafts: list[dict], channel_keys: dict[str, str]) -> bool:
    return (sorted(map(repr, (_canonical(p, channel_keys) for p in stored)))
            == sorted(map(repr, (_canonical(d, channel_keys) for d in drafts))))


# --- variants, attributes, images ------------------------------------------------------------


def _json_value(value):
    """An attribute value as JSON: Decimal as an int when whole, else as the number it reads as."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _attributes(variant: ProductVariant) -> list[dict]:
    return [{"name": name, "value": _json_value(value)} for name, value in variant.attributes.items()]


def _variant_key(variant: ProductVariant) -> str:
    return ct_key(variant.item_id or variant.sku)


def variant_draft(variant: ProductVariant, options: _Options) -> dict:
    return {"sku": variant.sku, "key": _variant_key(variant), "attributes": _attributes(variant),
            "images": [{"url": url, "dimensions": dict(options.image_dimensions)} for url in variant.images],
            "prices": price_drafts(variant.prices, options)}


def product_draft(product: Product, options: _Options) -> dict:
    """The ProductDraft for a product commercetools does not have yet (published at once)."""
    product_type = product.product_type or options.product_type
    if not product_type:
        raise CatalogueRefused("no product type: the item states none and the connection sets no default "
                               "(settings: product_type)")
    if not product.variants:
        raise CatalogueRefused("a product needs at least one variant")
    if len(product.variants) > MAX_VARIANTS_PER_PRODUCT:
        raise CatalogueRefused(f"{len(product.variants)} variants; commercetools takes {MAX_VARIANTS_PER_PRODUCT}")
    lang = options.language
    variants = [variant_draft(v, options) for v in product.variants]
    draft: dict = {"key": ct_key(product.key), "productType": {"typeId": "product-type", "key": product_type},
                   "name": {lang: product.name}, "slug": {lang: _slug(product.key)},
                   "masterVariant": variants[0], "variants": variants[1:], "publish": product.published}
    if product.description:
        draft["description"] = {lang: product.description}
    if product.tax_category:
        draft["taxCategory"] = {"typeId": "tax-category", "key": product.tax_category}
    return draft


def update_actions(existing: dict, product: Product, options: _Options, channel_keys: dict[str, str]) -> list[dict]:
    """What must change on the existing Product (staged data) for it to say what the ERP says."""
    master = existing["masterData"]
    if not product.published:  # retired: off the storefront, never deleted
        return [{"action": "unpublish"}] if master.get("published") else []
    if len(product.variants) > MAX_VARIANTS_PER_PRODUCT:
        raise CatalogueRefused(f"{len(product.variants)} variants; commercetools takes {MAX_VARIANTS_PER_PRODUCT}")
    staged = master.get("staged") or master.get("current") or {}
    lang = options.language
    actions: list[dict] = []
    if (staged.get("name") or {}).get(lang) != product.name:
        actions.append({"action": "changeName", "name": {**(staged.get("name") or {}), lang: product.name}})
    described = (staged.get("description") or {}).get(lang) or ""
    if product.description and described != product.description:
        actions.append({"action": "setDescription",
                        "description": {**(staged.get("description") or {}), lang: product.description}})
    if product.tax_category and _ref_key(existing.get("taxCategory"), {}) != product.tax_category:
        actions.append({"action": "setTaxCategory", "taxCategory": {"typeId": "tax-category", "key": product.tax_category}})

    stored = [v for v in [staged.get("masterVariant"), *(staged.get("variants") or [])] if v]
    by_key = {v.get("key"): v for v in stored if v.get("key")}
    by_sku = {v.get("sku"): v for v in stored if v.get("sku")}
    matched: list[tuple[ProductVariant, dict | None]] = []
    for variant in product.variants:
        found = by_key.get(_variant_key(variant)) or by_sku.get(variant.sku)
        matched.append((variant, found))
        if found is not None and found.get("sku") != variant.sku:  # a SKU renamed in the ERP
            actions.append({"action": "setSku", "variantId": found["id"], "sku": variant.sku})
    for variant, found in matched:
        if found is None:
            actions.append({"action": "addVariant", **variant_draft(variant, options)})
    first = product.variants[0] if product.variants else None
    if first is not None and (staged.get("masterVariant") or {}).get("sku") != first.sku:
        actions.append({"action": "changeMasterVariant", "sku": first.sku})
    for variant, found in matched:
        if found is None:
            continue
        have = {a["name"]: a.get("value") for a in found.get("attributes") or ()}
        for attribute in _attributes(variant):
            if attribute["name"] not in have or not _same_value(have[attribute["name"]], attribute["value"]):
                actions.append({"action": "setAttribute", "variantId": found["id"], **attribute})
        urls = {i.get("url") for i in found.get("images") or ()}
        for url in variant.images:
            if url not in urls:
                actions.append({"action": "addExternalImage", "variantId": found["id"],
                                "image": {"url": url, "dimensions": dict(options.image_dimensions)}})
        drafts = price_drafts(variant.prices, options)
        if not _same_prices(found.get("prices") or [], drafts, channel_keys):
            actions.append({"action": "setPrices", "sku": variant.sku, "prices": drafts})
    if actions or master.get("hasStagedChanges") or not master.get("published"):
        actions.append({"action": "publish"})
    return actions


def _same_value(stored, wanted) -> bool:
    if isinstance(stored, (int, float)) and isinstance(wanted, (int, float)) and not isinstance(stored, bool):
        return Decimal(str(stored)) == Decimal(str(wanted))
    return stored == wanted


# --- the exchange ----------------------------------------------------------------------------


def _variant_ids(product: dict) -> dict[str, str]:
    """sku -> "{productId}/{variantId}" (the form the catalogue reads and mapping health use)."""
    data = product["masterData"].get("staged") or product["masterData"].get("current") or {}
    return {v["sku"]: f"{product['id']}/{v['id']}" for v in [data.get("masterVariant") or {}, *(data.get("variants") or [])]
            if v.get("sku")}


class CatalogueWriter:
    """PUBLISH_PRODUCTS for one commercetools client and the connection's settings."""

    def __init__(self, client: CommercetoolsClient, settings: dict | None = None):
        self.client = client
        self.options = _Options(settings)
        self._channel_keys: dict[str, str] | None = None
        self._channel_lock = threading.Lock()

    def channel_keys(self) -> dict[str, str]:
        """Channel id -> key, read once per writer (the threads wait for the one read)."""
        with self._channel_lock:
            if self._channel_keys is None:
                self._channel_keys = {c["id"]: c.get("key") or c["id"] for c in self.client.list_channels()}
            return self._channel_keys

    def read(self, key: str) -> dict | None:
        try:
            return self.client.api("GET", f"products/key={key}", params=[("expand", e) for e in EXPAND])
        except NotFound:
            return None

    def update(self, product_id: str, version: int, actions: list[dict]) -> dict:
        """Send the actions, MAX_UPDATE_ACTIONS at a time, each request at the version the last returned."""
        result: dict = {}
        for start in range(0, len(actions), MAX_UPDATE_ACTIONS):
            result = self.client.api("POST", f"products/{product_id}",
                                     params=[("expand", e) for e in EXPAND],
                                     json={"version": version, "actions": actions[start:start + MAX_UPDATE_ACTIONS]})
            version = result["version"]
        return result

    def read_many(self, keys: list[str]) -> dict[str, dict]:
        """The Products with these keys (absent keys are simply not in the answer), one query."""
        where = f"key in ({', '.join(_quote(k) for k in keys)})"
        page = self.client.api("GET", "products", params=[("where", where), ("limit", str(len(keys))),
                                                          ("withTotal", "false"), *[("expand", e) for e in EXPAND]])
        return {p["key"]: p for p in page.get("results") or () if p.get("key")}

    def read_by_ids(self, ids: list[str]) -> dict[str, dict]:
        """The Products with these ids (the ones Ledgerline published or adopted), one query."""
        where = f"id in ({', '.join(_quote(i) for i in ids)})"
        page = self.client.api("GET", "products", params=[("where", where), ("limit", str(len(ids))),
                                                          ("withTotal", "false"), *[("expand", e) for e in EXPAND]])
        return {p["id"]: p for p in page.get("results") or ()}

    def read_id(self, product_id: str) -> dict | None:
        try:
            return self.client.api("GET", f"products/{product_id}", params=[("expand", e) for e in EXPAND])
        except NotFound:
            return None

    def sku_holders(self, skus: list[str]) -> dict[str, dict]:
        """sku -> the staged ProductProjection holding it, for the SKUs commercetools has (staged: a
        product made by hand and never published still holds its SKUs). LOOKUP_SKUS at a time."""
        holders: dict[str, dict] = {}
        wanted = list(dict.fromkeys(skus))
        batches: list[list[str]] = []
        chars = 0
        for sku in wanted:
            size = len(quote(sku, safe="")) + len("&var.skus=")
            if not batches or len(batches[-1]) >= LOOKUP_SKUS or chars + size > LOOKUP_CHARS:
                batches.append([])
                chars = 0
            batches[-1].append(sku)
            chars += size
        for batch in batches:
            page = self.client.api("GET", "product-projections", params=[
                ("staged", "true"), ("where", SKU_PREDICATE), *[("var.skus", sku) for sku in batch],
                ("limit", str(min(MAX_QUERY_LIMIT, len(batch)))), ("withTotal", "false"),
                *[("expand", e) for e in PROJECTION_EXPAND]])
            asked = set(batch)
            for projection in page.get("results") or ():
                for sku in _projection_skus(projection):
                    if sku in asked:  # only what was asked (a server that ignored the predicate adds nothing)
                        holders[sku] = projection
        return holders

    def _located(self, product: Product, holders: dict[str, dict]) -> "_Located":
        """Adopt, create or refuse, from the storefront products holding this product's SKUs."""
        found: dict[str, dict] = {}
        for variant in product.variants:
            if variant.sku in holders:
                found.setdefault(holders[variant.sku]["id"], holders[variant.sku])
        if not found:
            return _Located(None)
        ours = {v.sku for v in product.variants}
        if len(found) == 1:
            [projection] = found.values()
            if set(_projection_skus(projection)) <= ours:
                return _Located(_product_from_projection(projection), adopted=True)
        named = "; ".join(f"{_name_of(p)} holds {', '.join(_projection_skus(p))}" for p in found.values())
        return _Located(None, conflict=(
            f"commercetools already sells the SKUs of {product.key} ({', '.join(sorted(ours))}) grouped otherwise: "
            f"{named}; nothing was written (regroup them in the ERP or in commercetools)"))

    def locate(self, product: Product, product_id: str = "") -> "_Located":
        """The storefront product this one is: by id (recorded, or pinned by an earlier attempt), by our
        key, else by its SKUs (adoption). A retired product is never looked for by SKU: it is not ours
        to take over only to take it off sale."""
        product_id = product_id or product.storefront_id
        if product_id:
            existing = self.read_id(product_id)
            if existing is not None:
                return _Located(existing)
        existing = self.read(ct_key(product.key))
        if existing is not None or not product.published:
            return _Located(existing)
        return self._located(product, self.sku_holders([v.sku for v in product.variants]))

    def publish_one(self, product: Product, known=_UNREAD) -> PublishResult:
        """Create, update or adopt one product. `known`: where a batch read located it (_Located)."""
        key = ct_key(product.key)
        pinned = ""  # once located, the product is addressed by id (an adopted one may keep another key)
        adopted = False
        try:
            for _attempt in range(CONFLICT_ATTEMPTS):
                located = self.locate(product, pinned) if known is _UNREAD else known
                known = _UNREAD  # a retry reads again
                if located.conflict:
                    return PublishResult(key=product.key, ok=False, conflict=True, error=located.conflict[:1000])
                existing = located.product
                adopted = adopted or located.adopted
                if existing is None:
                    if not product.published:
                        return PublishResult(key=product.key, ok=True)  # retired before it was ever published
                    try:
                        written = self.client.api("POST", "products", json=product_draft(product, self.options))
                        return PublishResult(key=product.key, ok=True, storefront_id=written["id"],
                                             variant_ids=_variant_ids(written), created=True)
                    except PermanentError as exc:
                        if not (exc.code == "DuplicateField" and _duplicate_field(exc) in ("key", "sku")):
                            raise
                        # key: an earlier attempt created it after all; sku: another system just created a
                        # product holding our SKUs. Either way look again: update, adopt, or a conflict.
                        continue
                pinned = existing["id"]
                actions = update_actions(existing, product, self.options, self.channel_keys())
                if adopted and not existing.get("key"):  # a keyless product takes ours; another key is kept
                    actions.insert(0, {"action": "setKey", "key": key})
                try:
                    written = self.update(existing["id"], existing["version"], actions) if actions else existing
                except ConcurrentModification as exc:
                    log.info("commercetools product %s moved on (version %s); reading it again", key,
                             exc.current_version)
                    continue
                except PermanentError as exc:
                    if not (exc.code == "DuplicateField" and _duplicate_field(exc) == "sku"):
                        raise
                    # A variant to add is sold by another product there: the same conflict as at adoption.
                    holders = self.sku_holders([v.sku for v in product.variants])
                    ours = _projection_of(existing)
                    holders.update({sku: ours for sku in _projection_skus(ours)})
                    return PublishResult(key=product.key, ok=False, conflict=True,
                                         error=self._located(product, holders).conflict[:1000])
                if adopted:
                    log.info("commercetools %s adopted for %s (it already held the SKUs)",
                             _name_of(existing), product.key)
                return PublishResult(key=product.key, ok=True, storefront_id=written["id"],
                                     variant_ids=_variant_ids(written), adopted=adopted)
            return PublishResult(key=product.key, ok=False, retryable=True,
                                 error=f"commercetools product {key} kept changing under us "
                                       f"({CONFLICT_ATTEMPTS} ConcurrentModification answers)")
        except TransientError as exc:
            return PublishResult(key=product.key, ok=False, retryable=True, error=str(exc)[:500])
        except ConnectorError as exc:
            return PublishResult(key=product.key, ok=False, error=str(exc)[:500])
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # an answer not shaped as documented
            return PublishResult(key=product.key, ok=False,
                                 error=f"commercetools product {key}: unexpected answer ({exc!r})"[:500])

    def _locate_chunk(self, firsts: list[tuple[str, Product]]) -> dict[str, object]:
        """key -> _Located (or _UNREAD: the product reads on its own) for the first product of each key
        of a chunk: those with a storefront id in one query by id, the others in one query by key, then
        the SKUs of those still not found in LOOKUP_SKUS-sized lookups."""
        located: dict[str, object] = {key: _UNREAD for key, _ in firsts}
        ids = [p.storefront_id for _, p in firsts if p.storefront_id]
        keys = [key for key, p in firsts if not p.storefront_id]
        by_id: dict[str, dict] = {}
        by_key: dict[str, dict] = {}
        try:
            for start in range(0, len(ids), PREFETCH_KEYS):
                by_id.update(self.read_by_ids(ids[start:start + PREFETCH_KEYS]))
            for start in range(0, len(keys), PREFETCH_KEYS):
                by_key.update(self.read_many(keys[start:start + PREFETCH_KEYS]))
        except ConnectorError as exc:  # the batch read failed: each product reads on its own
            log.info("commercetools batch read of %d products failed (%s); reading one by one", len(firsts), exc)
            return located
        absent: list[tuple[str, Product]] = []
        for key, product in firsts:
            if product.storefront_id:  # not found by id (deleted in commercetools?): it reads on its own
                if product.storefront_id in by_id:
                    located[key] = _Located(by_id[product.storefront_id])
            elif key in by_key or not product.published:
                located[key] = _Located(by_key.get(key))
            else:
                absent.append((key, product))
        if absent:
            try:
                holders = self.sku_holders([v.sku for _, p in absent for v in p.variants])
            except ConnectorError as exc:
                log.info("commercetools SKU lookup of %d products failed (%s); looking one by one", len(absent), exc)
                return located
            for key, product in absent:
                located[key] = self._located(product, holders)
        return located

    def publish_products(self, products: list[Product]) -> list[PublishResult]:
        """One PublishResult per product, in order. Chunks of CHUNK_PRODUCTS keys go to CONCURRENCY threads;
        each chunk is located in queries of PREFETCH_KEYS (by id, by key) and one SKU lookup per
        LOOKUP_SKUS SKUs of the products not found, then written product by product (products sharing a
        key one after the other, the later ones reading it again)."""
        products = list(products)
        if not products:
            return []
        groups: dict[str, list[int]] = {}
        for n, product in enumerate(products):
            groups.setdefault(ct_key(product.key), []).append(n)
        keys = list(groups)
        chunks = [keys[i:i + CHUNK_PRODUCTS] for i in range(0, len(keys), CHUNK_PRODUCTS)]
        results: list[PublishResult | None] = [None] * len(products)

        def run(chunk: list[str]) -> None:
            found = self._locate_chunk([(key, products[groups[key][0]]) for key in chunk])
            for key in chunk:
                for position, n in enumerate(groups[key]):
                    results[n] = self.publish_one(products[n], found[key] if position == 0 else _UNREAD)

        with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(chunks))) as pool:
            for future in [pool.submit(run, chunk) for chunk in chunks]:
                future.result()
        return results  # type: ignore[return-value]

    def find_by_sku(self, sku: str) -> dict | None:
        """The Product holding this SKU (in its staged data, where setPrices writes), or None."""
        where = f"masterVariant(sku = {_quote(sku)}) or variants(sku = {_quote(sku)})"
        page = self.client.api("GET", "product-projections", params=[
            ("staged", "true"), ("where", where), ("limit", "2"), ("withTotal", "false")])
        found = page.get("results") or []
        if not found:
            return None
        return self.read(found[0]["key"]) if found[0].get("key") else self.client.api(
            "GET", f"products/{found[0]['id']}", params=[("expand", e) for e in EXPAND])

    def set_variant_prices(self, sku: str, prices: list[ItemPrice]) -> None:
        """setPrices for the variant with this SKU, then publish (the product stays unpublished if it was)."""
        drafts = price_drafts(prices, self.options)
        for _attempt in range(CONFLICT_ATTEMPTS):
            product = self.find_by_sku(sku)
            if product is None:
                raise NotFound(f"commercetools has no product with SKU {sku}")
            actions = [{"action": "setPrices", "sku": sku, "prices": drafts}]
            if product["masterData"].get("published"):
                actions.append({"action": "publish"})
            try:
                self.update(product["id"], product["version"], actions)
                return
            except ConcurrentModification:
                continue
        raise TransientError(f"commercetools product with SKU {sku} kept changing under us")


class _Located:
    """Where a Product stands in commercetools: `product` (a Product, with masterData) to update, or None
    to create; `adopted` when it was found by its SKUs; `conflict`, the sentence, when its SKUs are
    grouped otherwise there."""

    __slots__ = ("product", "adopted", "conflict")

    def __init__(self, product: dict | None, *, adopted: bool = False, conflict: str = ""):
        self.product, self.adopted, self.conflict = product, adopted, conflict


def _projection_skus(projection: dict) -> list[str]:
    return [v["sku"] for v in [projection.get("masterVariant") or {}, *(projection.get("variants") or [])]
            if v.get("sku")]


def _name_of(resource: dict) -> str:
    return f"product {resource['key']} (id {resource['id']})" if resource.get("key") else f"product id {resource['id']}"


def _projection_of(product: dict) -> dict:
    """The staged projection of a Product (its id, key and staged variants), for naming it."""
    staged = product["masterData"].get("staged") or product["masterData"].get("current") or {}
    return {"id": product["id"], **({"key": product["key"]} if product.get("key") else {}),
            "masterVariant": staged.get("masterVariant") or {}, "variants": staged.get("variants") or []}


def _product_from_projection(projection: dict) -> dict:
    """A staged ProductProjection in the shape of the Product it projects, as far as the update needs it
    (its id, version, key, tax category and staged data): the lookup's answer is written to directly,
    without a second read; a stale version meets 409 and is read again by id."""
    product = {k: projection[k] for k in ("id", "version", "key", "taxCategory", "productType") if k in projection}
    staged = {k: projection[k] for k in ("name", "description", "slug", "masterVariant", "variants") if k in projection}
    staged.setdefault("variants", [])
    product["masterData"] = {"staged": staged, "published": bool(projection.get("published")),
                             "hasStagedChanges": bool(projection.get("hasStagedChanges"))}
    return product


def _duplicate_field(exc: PermanentError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        for error in body.get("errors") or ():
            if isinstance(error, dict) and error.get("code") == "DuplicateField":
                return str(error.get("field") or "")
    return ""


def publish_products(client: CommercetoolsClient, products: list[Product], settings: dict | None = None):
    return CatalogueWriter(client, settings).publish_products(products)


def set_variant_prices(client: CommercetoolsClient, sku: str, prices: list[ItemPrice], settings: dict | None = None):
    return CatalogueWriter(client, settings).set_variant_prices(sku, prices)
