"""Publishing the item master to commercetools: create-or-update each Product by key, with its variants,
attributes, images and embedded prices, then publish it (or unpublish a retired one; nothing is ever
deleted). Storefront capability PUBLISH_PRODUCTS (integrations/connectors/catalogue.py).

Products are read PREFETCH_KEYS at a time (`GET /products?where=key in (…)`, the price and tax category
references expanded to their keys; a retry after a conflict reads `GET /products/key={key}`); absent,
`POST /products` with a ProductDraft (`publish: true`); present, `POST /products/{id}` at the product's
version with only the update actions the difference needs:
changeName, setDescription, setTaxCategory, setSku (a SKU renamed in the ERP: the variant is found by
its key, which is the ERP item id), addVariant, changeMasterVariant, setAttribute, addExternalImage,
setPrices (per variant, by SKU), then `publish` when anything changed or staged changes wait, or
`unpublish` for a retired product. Variants, attributes and images the ERP no longer states are left
as they are (never deleted). A second publish of unchanged data sends nothing but the read.

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
the key (an earlier attempt created it after all) goes on as an update, so no second product is made.

Limits (the HTTP API's documented limits, api/limits): 500 update actions per request (longer lists are
sent as several requests, each at the version the previous one returned, `publish` last); 100
variants per product and 100 prices per variant (refused here before sending); 500 results per query;
the Import API takes 20 resources per request (the path not taken: it is asynchronous, needs the import
containers and its own scope, and reports per-resource state later, where this one answers each
product at once). commercetools documents no request-rate or concurrency limit for the HTTP API; its
performance guidance asks for parallel requests and backoff on 502/503. So products are sent from a
bounded pool of CONCURRENCY threads through the one client (one token, its retries and pacing, its
request counters); each thread takes a chunk of PREFETCH_KEYS products, reads them in one query and
writes them one by one, so two writers of ours never race on one product's version. Requests: a first
load, one create per product and one read per chunk; a change, one update per changed product and one
read per chunk; an unchanged product, its share of the read only.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal

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
_UNREAD = object()

_KEY_OK = re.compile(r"^[A-Za-z0-9_-]{2,256}$")
_KEY_BAD = re.compile(r"[^A-Za-z0-9_-]+")
EXPAND = tuple(f"masterData.staged.{where}.prices[*].{ref}" for where in ("masterVariant", "variants[*]")
               for ref in ("customerGroup", "channel")) + ("taxCategory",)


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

    def publish_one(self, product: Product, known=_UNREAD) -> PublishResult:
        """Create or update one product. `known`: the Product as a batch read found it (None: absent)."""
        key = ct_key(product.key)
        try:
            for _attempt in range(CONFLICT_ATTEMPTS):
                existing = self.read(key) if known is _UNREAD else known
                known = _UNREAD  # a retry reads again
                created = False
                if existing is None:
                    if not product.published:
                        return PublishResult(key=product.key, ok=True)  # retired before it was ever published
                    try:
                        written = self.client.api("POST", "products", json=product_draft(product, self.options))
                        return PublishResult(key=product.key, ok=True, storefront_id=written["id"],
                                             variant_ids=_variant_ids(written), created=True)
                    except PermanentError as exc:
                        if not (exc.code == "DuplicateField" and _duplicate_field(exc) == "key"):
                            raise
                        continue  # an earlier attempt created it after all: read it and update
                actions = update_actions(existing, product, self.options, self.channel_keys())
                try:
                    written = self.update(existing["id"], existing["version"], actions) if actions else existing
                except ConcurrentModification as exc:
                    log.info("commercetools product %s moved on (version %s); reading it again", key,
                             exc.current_version)
                    continue
                return PublishResult(key=product.key, ok=True, storefront_id=written["id"],
                                     variant_ids=_variant_ids(written), created=created)
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

    def publish_products(self, products: list[Product]) -> list[PublishResult]:
        """One PublishResult per product, in order. Chunks of PREFETCH_KEYS keys go to CONCURRENCY threads;
        each chunk is read in one query, then written product by product (products sharing a key one
        after the other, the later ones reading it again)."""
        products = list(products)
        if not products:
            return []
        groups: dict[str, list[int]] = {}
        for n, product in enumerate(products):
            groups.setdefault(ct_key(product.key), []).append(n)
        keys = list(groups)
        chunks = [keys[i:i + PREFETCH_KEYS] for i in range(0, len(keys), PREFETCH_KEYS)]
        results: list[PublishResult | None] = [None] * len(products)

        def run(chunk: list[str]) -> None:
            try:
                found = self.read_many(chunk)
            except ConnectorError as exc:  # the batch read failed: each product reads on its own
                log.info("commercetools batch read of %d products failed (%s); reading one by one", len(chunk), exc)
                found = None
            for key in chunk:
                for position, n in enumerate(groups[key]):
                    known = found.get(key) if found is not None and position == 0 else _UNREAD
                    results[n] = self.publish_one(products[n], known)

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
