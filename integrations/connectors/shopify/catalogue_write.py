"""Publishing the item master to a Shopify shop (storefront capabilities PUBLISH_PRODUCTS and
BULK_PUBLISH of integrations/connectors/catalogue.py), on the Admin GraphQL API 2026-04.

One product per `Product.key`: `productSet` with `identifier: {handle}` is Shopify's upsert (from
2025-04): the handle is derived from the key (`product_handle`: lower case, anything but letters and
digits as one hyphen), so publishing the same key again updates the same product, never a second
one. `productSet` sets the whole state it is given: its variants (one per SKU; a variant left out is
deleted), options, title, description, product type, status. Handles rather than custom IDs: a
custom ID needs a metafield definition with the unique-values capability set up in each shop first;
a handle needs nothing. Two keys that differ only in case or punctuation would share a handle: the
ERP's product keys are codes, so the catalogue flow treats such a clash as one product.

What goes where:
- `status` ACTIVE; a retired product (`published=False`) is ARCHIVED: off every sales channel, kept
  with its orders, history and URL, and not in the merchant's list of drafts to finish (DRAFT means
  "not ready yet"). Never deleted.
- Options: the variant attributes whose values tell the variants apart (up to Shopify's three, in the
  order the first variant names them); a product of one variant has Shopify's "Title: Default Title";
  variants no attribute tells apart get one option "Variant" valued by SKU.
- Each variant: `inventoryItem.sku` (tracked), `barcode` (the first), `price` and `compareAtPrice`
  as exact decimal strings. The variant's price is the ItemPrice in the shop's currency with no
  country, customer group, channel or tier (min_quantity 1) in effect now (valid_from/valid_until);
  type "compare_at" likewise gives compareAtPrice (none: cleared). Without such a list price the
  product is not sent (PublishResult ok=False, not retryable): Shopify would sell it at 0.
- Prices in other currencies (same scope rules) go to the market price list the connection's
  settings name for that currency (`price_lists: {"EUR": "gid://shopify/PriceList/…"}`) with
  `priceListFixedPricesAdd` (which replaces a variant's fixed price: sending it again is harmless). A
  currency without a configured price list, and every price scoped by country, customer group,
  channel or quantity tier, is not sent: Shopify's variant has one base price, and markets are
  configured per currency here.
- Not sent: images (media need staged uploads of their own), attributes that are no option
  (metafields need definitions), tax category.

Idempotency: 2026-04 documents `@idempotent` for inventory, location and refund mutations only, not
for productSet, productVariantsBulkUpdate, priceListFixedPricesAdd or bulkOperationRunMutation (the
published schema's descriptions): these are set-the-state mutations, so a resend after a timeout sets
the same state again. A bulk mutation is identified by its BulkOperation gid, which the catalogue flow
stores before waiting: after a crash it asks the same operation (`bulk_publish_status`), and even a
bulk started twice with the same products upserts the same handles.

Bulk (BULK_PUBLISH): the productSet variables, one product a line, are written as JSONL, staged with
`stagedUploadsCreate` (resource BULK_MUTATION_VARIABLES, a multipart POST of the target's parameters
and then the file, like Shopify's CLI), and run with `bulkOperationRunMutation` (the same PRODUCT_SET
document). Shopify runs one bulk mutation per shop at a time: a second is refused with
OPERATION_IN_PROGRESS, raised as `BulkOperationInProgress` (transient: try again later). The result
JSONL's lines come in no promised order and name their input line in `__lineNumber`; each is mapped
back to its product by that line (the products handed to `bulk_publish_results`, or those this client
started the job with) and, for a line that created or updated a product, by the handle it answers.
The market price lists are applied once the job's variant ids are known (`bulk_publish_results`,
when it knows the products).

Cost points: every answer's `extensions.cost` is counted on the client (`client.cost_points`, actual
cost; `client.cost_points_requested`), and the client waits on the bucket before sending and after
THROTTLED; a product still THROTTLED after the client's retries is a retryable PublishResult.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from datetime import datetime, timezone
from decimal import Decimal

import requests

from ..base import NotFound, PermanentError, TransientError
from ..catalogue import ItemPrice, Product, PublishResult, BulkStatus
from .bulk import BulkOperationInProgress, download_lines
from .catalogue_read import shop_currency

log = logging.getLogger("ledgerline.connectors.shopify.catalogue")

MAX_OPTIONS = 3
DEFAULT_OPTION = ("Title", "Default Title")
FALLBACK_OPTION = "Variant"
LOOKUPS_PER_QUERY = 50  # aliased productByIdentifier lookups in one query (1 point each)
PRICES_PER_CALL = 250  # Shopify's maximum input array size
BULK_FILENAME = "ledgerline-products.jsonl"

# Also the bulk mutation: each JSONL line holds these variables.
PRODUCT_SET = """
mutation PublishProduct($identifier: ProductSetIdentifiers, $input: ProductSetInput!, $variants: Int!) {
  productSet(identifier: $identifier, input: $input, synchronous: true) {
    product { id handle createdAt variants(first: $variants) { nodes { id sku } } }
    userErrors { code field message }
  }
}"""

VARIANTS_BULK_UPDATE = """
mutation RestoreVariantPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price compareAtPrice }
    userErrors { code field message }
  }
}"""

# Only the user errors are read back: the prices echoed would cost a point each.
PRICE_LIST_ADD = """
mutation PublishMarketPrices($priceListId: ID!, $prices: [PriceListPriceInput!]!) {
  priceListFixedPricesAdd(priceListId: $priceListId, prices: $prices) {
    userErrors { code field message }
  }
}"""

STAGED_UPLOADS_CREATE = """
mutation StageProductsFile($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""

BULK_RUN_MUTATION = """
mutation PublishProductsInBulk($mutation: String!, $stagedUploadPath: String!, $clientIdentifier: String) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $stagedUploadPath, clientIdentifier: $clientIdentifier) {
    bulkOperation { id status createdAt }
    userErrors { code field message }
  }
}"""

BULK_POLL = """
query PublishBulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status type errorCode createdAt completedAt objectCount url partialDataUrl }
}"""


def _lookup_document(count: int) -> str:
    """Which of `count` handles (aliased h0..) the shop already has a product for."""
    params = ", ".join(f"$h{i}: String!" for i in range(count))
    parts = "\n".join(f"  p{i}: productByIdentifier(identifier: {{handle: $h{i}}}) {{ id }}" for i in range(count))
    return f"query ExistingProducts({params}) {{\n{parts}\n}}"


def product_handle(key: str) -> str:
    """The Shopify handle a product key is published under (what Shopify itself makes of it)."""
    return re.sub(r"[^a-z0-9]+", "-", str(key).lower()).strip("-")


def _text(amount: Decimal) -> str:
    """A Decimal as the exact string Shopify's Money scalar takes (no exponent, every digit kept)."""
    return format(amount, "f")


def _in_effect(price: ItemPrice, now: datetime) -> bool:
    def aware(moment: datetime) -> datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    return ((price.valid_from is None or aware(price.valid_from) <= now)
            and (price.valid_until is None or now < aware(price.valid_until)))


def base_prices(prices, now: datetime | None = None) -> dict[str, dict[str, Decimal]]:
    """currency -> {"list": amount, "compare_at": amount}: the prices a Shopify variant (or a market
    price list) can carry, i.e. unscoped by country, customer group, channel and tier, in effect now.
    Of several in effect, the one that started last wins."""
    now = now or datetime.now(timezone.utc)
    chosen: dict[tuple[str, str], ItemPrice] = {}
    for price in prices:
        if price.country or price.customer_group or price.channel or price.min_quantity > 1:
            continue
        if price.type not in ("list", "compare_at") or not _in_effect(price, now):
            continue
        slot = (price.currency.upper(), price.type)
        held = chosen.get(slot)
        if held is None or (price.valid_from or datetime.min.replace(tzinfo=timezone.utc)) > (
                held.valid_from or datetime.min.replace(tzinfo=timezone.utc)):
            chosen[slot] = price
    result: dict[str, dict[str, Decimal]] = {}
    for (currency, kind), price in chosen.items():
        result.setdefault(currency, {})[kind] = price.amount
    return result


def _scalar(value) -> str | None:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (str, int, Decimal)) and str(value).strip():
        return str(value).strip()
    return None


def product_options(product: Product) -> tuple[list[str], list[list[str]]]:
    """(option names, each variant's values in that order)."""
    variants = product.variants
    if len(variants) == 1:
        return [DEFAULT_OPTION[0]], [[DEFAULT_OPTION[1]]]
    names = []
    for name in variants[0].attributes:
        values = [_scalar(v.attributes.get(name)) for v in variants]
        if all(values) and len(set(values)) > 1:
            names.append(name)
    names = names[:MAX_OPTIONS]
    rows = [[_scalar(v.attributes.get(n)) for n in names] for v in variants]
    if not names or len({tuple(r) for r in rows}) != len(rows):
        return [FALLBACK_OPTION], [[v.sku] for v in variants]
    return [str(n) for n in names], rows


def product_set_variables(product: Product, currency: str) -> dict:
    """The productSet variables of one product; ValueError when a variant has no price in `currency`."""
    names, rows = product_options(product)
    variants = []
    for variant, values in zip(product.variants, rows):
        prices = base_prices(variant.prices).get(currency.upper(), {})
        if "list" not in prices:
            raise ValueError(f"{variant.sku} has no price in the shop's currency {currency} (unscoped, in effect)")
        variants.append({
            "optionValues": [{"optionName": n, "name": v} for n, v in zip(names, values)],
            "price": _text(prices["list"]),
            "compareAtPrice": _text(prices["compare_at"]) if "compare_at" in prices else None,
            "barcode": variant.barcodes[0] if variant.barcodes else None,
            "inventoryItem": {"sku": variant.sku, "tracked": True},
        })
    options = [{"name": n, "values": [{"name": v} for v in dict.fromkeys(r[i] for r in rows)]}
               for i, n in enumerate(names)]
    handle = product_handle(product.key)
    data = {
        "handle": handle,
        "title": product.name,
        "descriptionHtml": html.escape(product.description).replace("\n", "<br>") if product.description else "",
        "productType": product.product_type,
        "status": "ACTIVE" if product.published else "ARCHIVED",
    }
    if product.variants:
        data.update({"productOptions": options, "variants": variants})
    return {"identifier": {"handle": handle}, "input": data, "variants": max(1, len(product.variants))}


def _message(errors: list) -> str:
    return "; ".join(f"{'.'.join(str(f) for f in (e.get('field') or []))}: {e.get('message', '')}".lstrip(": ")
                     for e in errors)


def _currency(client) -> str:
    cached = getattr(client, "_shop_currency", None)
    if not cached:
        cached = client._shop_currency = shop_currency(client)
    return cached


def _existing_handles(client, handles: list[str]) -> set[str]:
    found = set()
    for start in range(0, len(handles), LOOKUPS_PER_QUERY):
        batch = handles[start:start + LOOKUPS_PER_QUERY]
        data = client.graphql(_lookup_document(len(batch)), {f"h{i}": h for i, h in enumerate(batch)})
        found.update(h for i, h in enumerate(batch) if data.get(f"p{i}"))
    return found


def _variant_ids(product_node: dict) -> dict[str, str]:
    return {n.get("sku") or "": n["id"] for n in ((product_node.get("variants") or {}).get("nodes") or ())}


# --- market price lists -------------------------------------------------------------------------


def market_prices(client, products: list[Product], variant_ids: dict[str, dict[str, str]]) -> dict[str, str]:
    """Put each variant's prices in other currencies on the configured price lists. variant_ids:
    product key -> {sku: variant gid}. Returns product key -> error for the products whose market
    prices were refused (the product itself is published)."""
    lists = {c.upper(): gid for c, gid in (getattr(client, "price_lists", None) or {}).items() if gid}
    if not lists:
        return {}
    shop = _currency(client)
    entries: dict[str, list[tuple[str, dict]]] = {}  # price list -> [(product key, PriceListPriceInput)]
    for product in products:
        ids = variant_ids.get(product.key) or {}
        for variant in product.variants:
            if variant.sku not in ids:
                continue
            for currency, prices in base_prices(variant.prices).items():
                if currency == shop or currency not in lists or "list" not in prices:
                    continue
                entry = {"variantId": ids[variant.sku],
                         "price": {"amount": _text(prices["list"]), "currencyCode": currency}}
                if "compare_at" in prices:
                    entry["compareAtPrice"] = {"amount": _text(prices["compare_at"]), "currencyCode": currency}
                entries.setdefault(lists[currency], []).append((product.key, entry))
    failed: dict[str, str] = {}
    for price_list, rows in entries.items():
        for start in range(0, len(rows), PRICES_PER_CALL):
            batch = rows[start:start + PRICES_PER_CALL]
            try:
                result = client.graphql(PRICE_LIST_ADD, {"priceListId": price_list,
                                                         "prices": [e for _, e in batch]})["priceListFixedPricesAdd"] or {}
            except TransientError as exc:
                for key, _ in batch:
                    failed[key] = f"market price list {price_list}: {exc} (retry)"
                continue
            errors = result.get("userErrors") or []
            if errors:
                # The call is refused whole: name the products of the entries the errors point at, else all.
                named = {int(e["field"][1]) for e in errors
                         if len(e.get("field") or []) > 1 and str(e["field"][1]).isdigit()}
                for i, (key, _) in enumerate(batch):
                    if not named or i in named:
                        failed[key] = f"market price list {price_list}: {_message(errors)}"
                    else:
                        failed.setdefault(key, f"market price list {price_list}: refused with another entry "
                                               f"({_message(errors)})")
    return failed


# --- PUBLISH_PRODUCTS --------------------------------------------------------------------------------


def publish_products(client, products: list[Product]) -> list[PublishResult]:
    """Create or update each product (one productSet each), then its market prices. One result per
    product, in order; a THROTTLED or 5xx answer that outlived the client's retries is retryable."""
    try:
        currency = _currency(client)
    except TransientError as exc:
        return [PublishResult(p.key, ok=False, error=str(exc), retryable=True) for p in products]
    results: dict[str, PublishResult] = {}
    prepared = []
    for product in products:
        try:
            prepared.append((product, product_set_variables(product, currency)))
        except ValueError as exc:
            results[product.key] = PublishResult(product.key, ok=False, error=str(exc))
    try:
        existing = _existing_handles(client, [v["identifier"]["handle"] for _, v in prepared])
    except TransientError:
        existing = None  # unknown: `created` stays False, the publish itself does not depend on it
    published: list[Product] = []
    ids: dict[str, dict[str, str]] = {}
    for product, variables in prepared:
        try:
            answer = client.graphql(PRODUCT_SET, variables)["productSet"] or {}
        except TransientError as exc:
            results[product.key] = PublishResult(product.key, ok=False, error=str(exc), retryable=True)
            continue
        errors = answer.get("userErrors") or []
        node = answer.get("product")
        if errors or not node:
            results[product.key] = PublishResult(product.key, ok=False, error=_message(errors) or "no product returned")
            continue
        ids[product.key] = _variant_ids(node)
        published.append(product)
        results[product.key] = PublishResult(
            product.key, ok=True, storefront_id=node["id"], variant_ids=ids[product.key],
            created=existing is not None and variables["identifier"]["handle"] not in existing)
    for key, error in market_prices(client, published, ids).items():
        held = results[key]
        results[key] = PublishResult(key, ok=False, storefront_id=held.storefront_id, variant_ids=held.variant_ids,
                                     error=error, retryable="(retry)" in error, created=held.created)
    return [results[p.key] for p in products]


def set_variant_prices(client, sku: str, prices: list[ItemPrice]) -> None:
    """The drift screen's "restore ERP price": the variant's price and compare-at price back to the
    ERP's (productVariantsBulkUpdate), and its market prices on the configured price lists."""
    found = client.find_variants_by_sku([sku]).get(sku)
    if found is None:
        raise NotFound(f"Shopify has no variant with SKU {sku}", code="NOT_FOUND")
    currency = _currency(client)
    own = base_prices(prices).get(currency, {})
    change: dict = {"id": found["variant_id"]}
    if "list" in own:
        change["price"] = _text(own["list"])
    if "list" in own or "compare_at" in own:
        change["compareAtPrice"] = _text(own["compare_at"]) if "compare_at" in own else None
    if len(change) > 1:
        result = client.graphql(VARIANTS_BULK_UPDATE, {"productId": found["product_id"], "variants": [change]})
        errors = (result.get("productVariantsBulkUpdate") or {}).get("userErrors") or []
        if errors:
            raise PermanentError(f"Shopify refused the prices of {sku}: {_message(errors)}",
                                 code=",".join(str(e.get("code") or "") for e in errors))
    from ..catalogue import ProductVariant

    product = Product(key=sku, name=sku, variants=(ProductVariant(sku=sku, item_id="", prices=tuple(prices)),))
    failed = market_prices(client, [product], {sku: {sku: found["variant_id"]}})
    if failed:
        raise PermanentError(f"Shopify refused the market prices of {sku}: {failed[sku]}")


# --- BULK_PUBLISH ----------------------------------------------------------------------------------


def _bulk_lines(client, products: list[Product], out=None) -> dict[str, str]:
    """Write each product's productSet variables as one JSONL line to `out` (a binary file; None: only
    find the refused ones), one at a time so a large catalogue is never held as one text; the refused
    products {key: why} (no price in the shop's currency)."""
    currency = _currency(client)
    refused = {}
    for product in products:
        try:
            variables = product_set_variables(product, currency)
        except ValueError as exc:
            refused[product.key] = str(exc)
            continue
        if out is not None:
            out.write(json.dumps(variables, separators=(",", ":")).encode() + b"\n")
    return refused


def _stage(client, body) -> str:
    """Upload the JSONL file (a binary file object at its start, or bytes) to a staged target; its key."""
    size = len(body) if isinstance(body, bytes) else os.fstat(body.fileno()).st_size
    answer = client.graphql(STAGED_UPLOADS_CREATE, {"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": BULK_FILENAME, "mimeType": "text/jsonl",
        "httpMethod": "POST", "fileSize": str(size)}]})["stagedUploadsCreate"] or {}
    errors = answer.get("userErrors") or []
    targets = answer.get("stagedTargets") or []
    if errors or not targets:
        raise PermanentError(f"Shopify refused to stage the products file: {_message(errors) or 'no target'}")
    target = targets[0]
    parameters = [(p["name"], p["value"]) for p in target.get("parameters") or ()]
    key = next((value for name, value in parameters if name == "key"), None)
    if not key or not target.get("url"):
        raise PermanentError("Shopify's staged upload target has no url or key")
    # A signed storage target: posted without the shop's access token, the file last.
    try:
        response = requests.post(target["url"], data=parameters, files={"file": (BULK_FILENAME, body, "text/jsonl")},
                                 timeout=max(60.0, client.timeout))
    except requests.RequestException as exc:
        raise TransientError(f"uploading the products file to Shopify's staged target failed: {exc}") from exc
    if response.status_code >= 500:
        raise TransientError(f"uploading the products file failed: {response.status_code}", status=response.status_code)
    if response.status_code >= 400:
        raise PermanentError(f"the staged target refused the products file ({response.status_code}): "
                             f"{response.text[:300]}", status=response.status_code)
    return key


def bulk_publish_start(client, products: list[Product]) -> str:
    """Stage the products' productSet variables as JSONL and start one bulk mutation; its gid.
    Products without a price in the shop's currency are left out (bulk_publish_results reports them
    while this client knows them). Raises BulkOperationInProgress while another runs (retry later)."""
    with tempfile.TemporaryFile() as body:  # the JSONL on disk, not in memory
        refused = _bulk_lines(client, products, body)
        body.flush()
        body.seek(0)
        key = _stage(client, body)
    result = client.graphql(BULK_RUN_MUTATION, {"mutation": PRODUCT_SET, "stagedUploadPath": key})[
        "bulkOperationRunMutation"] or {}
    errors = result.get("userErrors") or []
    if errors:
        message = _message(errors)
        if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
            refused = BulkOperationInProgress(f"Shopify: {message}", code="OPERATION_IN_PROGRESS")
            refused.retry_after = 30.0  # seconds: when to ask again (one bulk mutation per shop at a time)
            raise refused
        if any(e.get("code") == "INTERNAL_FILE_SERVER_ERROR" for e in errors):
            raise TransientError(f"Shopify could not read the products file: {message}", code="INTERNAL_FILE_SERVER_ERROR")
        raise PermanentError(f"Shopify refused the bulk publish: {message}",
                             code=",".join(str(e.get("code") or "") for e in errors))
    handle = result["bulkOperation"]["id"]
    client._bulk_jobs = {**getattr(client, "_bulk_jobs", {}), handle: (list(products), refused)}
    return handle


def _poll(client, handle: str) -> dict:
    node = client.graphql(BULK_POLL, {"id": handle}).get("bulkOperation")
    if node is None:
        raise PermanentError(f"Shopify has no bulk operation {handle}")
    return node


_STATES = {"CREATED": "running", "RUNNING": "running", "CANCELING": "running", "COMPLETED": "completed"}


def bulk_publish_status(client, handle: str) -> BulkStatus:
    node = _poll(client, handle)
    state = _STATES.get(node.get("status") or "", "failed")
    return BulkStatus(handle=handle, state=state, done_count=int(node.get("objectCount") or 0),
                      error="" if state != "failed" else f"{node.get('status')}"
                      + (f" ({node['errorCode']})" if node.get("errorCode") else ""))


def bulk_publish_results(client, handle: str, products: list[Product] | None = None) -> list[PublishResult]:
    """One result per product of a completed job. `products`: those the job was started with, in the
    same order (after a crash, rebuilt by the caller); without them, those this client started it
    with. A line is matched to its product by `__lineNumber`, and a line that answers a product also
    by its handle; with no products known, successes come back keyed by handle and refusals by line."""
    node = _poll(client, handle)
    if node.get("status") != "COMPLETED":
        state = _STATES.get(node.get("status") or "", "failed")
        if state == "running":
            raise TransientError(f"Shopify's bulk operation {handle} is still {node.get('status')}")
        raise PermanentError(f"Shopify's bulk operation {handle} ended {node.get('status')}"
                             + (f" ({node['errorCode']})" if node.get("errorCode") else ""))
    known, refused = (list(products), {}) if products is not None else getattr(client, "_bulk_jobs", {}).get(handle, ([], {}))
    if products is not None:
        refused = _bulk_lines(client, known)
    sent = [p for p in known if p.key not in refused]
    by_handle = {product_handle(p.key): p for p in sent}
    started = node.get("createdAt") or ""
    results: dict[str, PublishResult] = {}
    ids: dict[str, dict[str, str]] = {}
    for line in download_lines(node.get("url")):
        number = line.get("__lineNumber")
        product = sent[number] if isinstance(number, int) and 0 <= number < len(sent) else None
        answer = ((line.get("data") or {}).get("productSet")) or {}
        found = answer.get("product")
        if found and found.get("handle") in by_handle:
            product = by_handle[found["handle"]]
        key = product.key if product else (found or {}).get("handle") or f"line {number}"
        errors = answer.get("userErrors") or []
        if line.get("errors") or errors or not found:
            message = _message(errors) or "; ".join(e.get("message", "") for e in line.get("errors") or ()) or "no product"
            results[key] = PublishResult(key, ok=False, error=message)
            continue
        ids[key] = _variant_ids(found)
        # Created by this job: created since it started (Shopify's timestamps are to the second).
        results[key] = PublishResult(key, ok=True, storefront_id=found["id"], variant_ids=ids[key],
                                     created=bool(started) and (found.get("createdAt") or "") >= started)
    for key, error in refused.items():
        results[key] = PublishResult(key, ok=False, error=error)
    for key, error in market_prices(client, [p for p in sent if p.key in ids], ids).items():
        held = results[key]
        results[key] = PublishResult(key, ok=False, storefront_id=held.storefront_id, variant_ids=held.variant_ids,
                                     error=error, retryable="(retry)" in error, created=held.created)
    order = [p.key for p in known if p.key in results]
    return [results[k] for k in order] + [r for k, r in results.items() if k not in set(order)]
