"""Publishing the item master to a Shopify shop (storefront capabilities PUBLISH_PRODUCTS and
BULK_PUBLISH of integrations/connectors/catalogue.py), on the Admin GraphQL API 2026-04.

One product per `Product.key`, never a second product for SKUs the shop already sells. Before writing,
the publisher looks the products' SKUs up in the shop (`productVariants(query: "sku:\"A\" OR ...")`,
SKUS_PER_LOOKUP SKUs a query, each variant with its product's id, handle, variant count and our image
record) and addresses each product so (a product whose variants all carry their recorded variant id and
last images, `ProductVariant.storefront_id` / `images_pushed`, is ours and needs no lookup: it is
written by id straight away, so a 1 % change costs no lookups; a SKU someone also put on another
product is then found by the catalogue drift check's duplicate-SKU rule instead):
- `storefront_id` known (published or adopted before): `productSet` with `identifier: {id}`, no
  `handle` in the input (the storefront's handle is kept, its URL with it);
- none of its SKUs in the shop: `identifier: {handle}` (Shopify's upsert from 2025-04) with the handle
  derived from the key (`product_handle`: lower case, anything but letters and digits as one hyphen);
- all of its SKUs found on ONE product whose variants are all this product's (its `variantsCount`
  equals the SKUs found on it): that product is adopted, updated by id (PublishResult.adopted, its
  gid as storefront_id);
- otherwise (the SKUs spread over several products, a product holding SKUs this one lacks, a SKU sold
  twice): nothing is written, PublishResult(conflict=True) names each storefront product (title,
  handle, gid) and all its SKUs (read back for the message only).
`productSet` sets the whole state it is given, and its list fields replace (Shopify: "creates new
entries, updates existing entries, and deletes existing entries that aren't included"): a variant
with no `id` is created ("Specifies the product variant to update or create a new variant if
absent"), so every variant the lookup found is sent with its variant `id` and is updated in place,
with its orders, inventory item and stock. Handles rather than custom IDs: a custom ID needs a
metafield definition with the unique-values capability set up in each shop first. Two keys that
differ only in case or punctuation would share a handle: the ERP's product keys are codes, so the
catalogue flow treats such a clash as one product.

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
- Images by URL: `files` (FileSetInput: originalSource = the URL, contentType IMAGE, alt = the
  product's name) holds the union of the variants' images, the first variant's first image first;
  each variant's first image is its `file` (Shopify: "Any file specified here must also be specified
  in the files input for the product"). `files` is a list field too, matched by file `id`: an
  originalSource sent again is fetched again as a new file (Shopify appends a UUID to a filename in
  use, APPEND_UUID being the default), so re-sending the same URLs on every publish would pile up
  media. Hence the product keeps a record of the sources it was last given, the product metafield
  `ledgerline.image_sources` (type json, read in the SKU lookup at no extra request): the same
  sources as recorded, `files` and the variants' `file` are left out (Shopify leaves an omitted
  field unchanged: media and their ids stay); other sources, or none recorded (a new or adopted
  product), the files are sent and the product's media become exactly these. No images in the ERP:
  no `files`, whatever media the merchant put there stay.
- Attributes that are no option: metafields in our namespace `ledgerline` (Shopify's rules: key
  2-64 characters of letters, digits, `-` and `_`, so the attribute's name as a slug; namespace
  3-255), typed by value: text single_line_text_field (multi_line_text_field with a line break),
  int number_integer, Decimal number_decimal, bool boolean, a list of texts
  list.single_line_text_field (its value JSON); values are strings, as MetafieldInput takes them. An
  attribute with one value on every variant is a product metafield, one that differs a variant
  metafield. No metafield definitions are needed: MetafieldInput.type is "Required when creating or
  updating a metafield without a definition" (the published schema). `metafields` is a list field as
  well: once sent, a product's (variant's) metafields are exactly ours, so it is left out when there
  is none to send, and other apps' metafields on products the ERP masters are not kept.
- Not sent: tax category. Shopify has no per-product tax class to put it in: taxes come from the
  shop's regions and product category (`taxable` and the deprecated variant `taxCode` are not a
  category), so the ERP's tax code stays with the ERP's documents and the tax drift check.

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
THROTTLED; a product still THROTTLED after the client's retries is a retryable PublishResult. The SKU
lookup asks 4 points a SKU (402 for a query of 100) and is charged what it finds: 2 points a query
that finds nothing (a first load into an empty shop: 100,000 SKUs in 1,000 queries, about 2,000
points, 20 s of a standard plan's 100 points/s), about 3 points a SKU found (a 1 % change of 100,000
items: about 3,000 points). Measured on the sandbox shop, whose costs follow Shopify's rules (1 an
object, connections by `first`).
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from dataclasses import replace
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
SKUS_PER_LOOKUP = 100  # "sku:A OR sku:B ..." terms of one variant lookup (about 4 points requested a SKU)
GROUPINGS_PER_QUERY = 9  # aliased product reads for a conflict's message (about 103 points each)
GROUPING_VARIANTS = 100
NAMESPACE = "ledgerline"  # our metafields
IMAGE_SOURCES_KEY = "image_sources"  # the product metafield recording the image sources last sent
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


# The adoption lookup: each variant holding one of the SKUs, with its product and our image record.
VARIANTS_BY_SKU = """
query PublishedVariantsBySku($query: String!, $first: Int!, $after: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes {
      id sku
      product { id title handle variantsCount { count } images: metafield(namespace: "ledgerline", key: "image_sources") { value } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


def _grouping_document(count: int) -> str:
    """Products (aliased g0..) with their SKUs: what a conflict's message names."""
    params = ", ".join(f"$g{i}: ID!" for i in range(count))
    parts = "\n".join(f"  g{i}: product(id: $g{i}) {{ id title handle variants(first: {GROUPING_VARIANTS}) "
                      f"{{ nodes {{ id sku }} }} }}" for i in range(count))
    return f"query StorefrontGrouping({params}) {{\n{parts}\n}}"


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


def metafield_key(name) -> str:
    """An attribute's name as a metafield key: 2-64 of letters, digits, `-` and `_` (Shopify's rule)."""
    key = re.sub(r"[^a-z0-9_-]+", "_", str(name).lower()).strip("_-")
    if 0 < len(key) < 2:
        key = f"attr_{key}"
    return key[:64]


def _metafield_value(value) -> tuple[str, str] | None:
    """(metafield type, value as the string Shopify stores) of an attribute value; None: nothing to send."""
    if isinstance(value, bool):
        return "boolean", "true" if value else "false"
    if isinstance(value, int):
        return "number_integer", str(value)
    if isinstance(value, Decimal):
        return ("number_decimal", _text(value)) if value.is_finite() else None
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value if str(v).strip()]
        return ("list.single_line_text_field", json.dumps(items, ensure_ascii=False)) if items else None
    if isinstance(value, str) and value.strip():
        return ("multi_line_text_field" if "\n" in value.strip() else "single_line_text_field"), value.strip()
    return None  # a float or anything else: never guessed into a number


def _metafields(attributes: dict) -> list[dict]:
    fields, keys = [], set()
    for name, value in attributes.items():
        key, typed = metafield_key(name), _metafield_value(value)
        if not key or typed is None or key in keys:
            continue
        keys.add(key)
        fields.append({"namespace": NAMESPACE, "key": key, "type": typed[0], "value": typed[1]})
    return fields


def attribute_metafields(product: Product, option_names: list[str]) -> tuple[dict, list[dict]]:
    """The attributes no option carries: (product-level attributes, each variant's own), a product-level
    one being held by every variant with the same value."""
    names = [n for n in dict.fromkeys(n for v in product.variants for n in v.attributes) if n not in option_names]
    shared, own = {}, [dict() for _ in product.variants]
    for name in names:
        values = [v.attributes.get(name, _MISSING) for v in product.variants]
        if all(value is not _MISSING for value in values) and all(value == values[0] for value in values):
            shared[name] = values[0]
            continue
        for row, value in zip(own, values):
            if value is not _MISSING:
                row[name] = value
    return shared, own


_MISSING = object()


def product_images(product: Product) -> list[str]:
    """The product's image URLs: the union of its variants' images, the first variant's first image first."""
    return list(dict.fromkeys(url for v in product.variants for url in v.images if url))


def image_record(product: Product) -> str:
    """What `ledgerline.image_sources` holds once the images are sent: the sources, and each variant's."""
    return json.dumps({"files": product_images(product),
                       "variants": {v.sku: v.images[0] for v in product.variants if v.images}},
                      separators=(",", ":"), sort_keys=True)


def _file(url: str, alt: str) -> dict:
    return {"originalSource": url, "contentType": "IMAGE", "alt": alt}


def product_set_variables(product: Product, currency: str, *, product_id: str = "", variant_ids: dict | None = None,
                          recorded_images: str | None = None) -> dict:
    """The productSet variables of one product; ValueError when a variant has no price in `currency`.
    product_id: update that product by id (its handle kept); variant_ids: sku -> the storefront's
    variant gid (updated in place); recorded_images: the product's `ledgerline.image_sources` (files
    are sent only when they differ)."""
    names, rows = product_options(product)
    variant_ids = variant_ids or {}
    images = product_images(product)
    record = image_record(product) if images else None
    send_files = bool(images) and record != recorded_images
    shared, own = attribute_metafields(product, [n for n in names if n not in (DEFAULT_OPTION[0], FALLBACK_OPTION)])
    variants = []
    for variant, values, attributes in zip(product.variants, rows, own):
        prices = base_prices(variant.prices).get(currency.upper(), {})
        if "list" not in prices:
            raise ValueError(f"{variant.sku} has no price in the shop's currency {currency} (unscoped, in effect)")
        spec = {
            "optionValues": [{"optionName": n, "name": v} for n, v in zip(names, values)],
            "price": _text(prices["list"]),
            "compareAtPrice": _text(prices["compare_at"]) if "compare_at" in prices else None,
            "barcode": variant.barcodes[0] if variant.barcodes else None,
            "inventoryItem": {"sku": variant.sku, "tracked": True},
        }
        if variant.sku in variant_ids:
            spec = {"id": variant_ids[variant.sku], **spec}
        if send_files and variant.images:
            spec["file"] = _file(variant.images[0], product.name)
        fields = _metafields(attributes)
        if fields:
            spec["metafields"] = fields
        variants.append(spec)
    options = [{"name": n, "values": [{"name": v} for v in dict.fromkeys(r[i] for r in rows)]}
               for i, n in enumerate(names)]
    handle = product_handle(product.key)
    data = {
        "title": product.name,
        "descriptionHtml": html.escape(product.description).replace("\n", "<br>") if product.description else "",
        "productType": product.product_type,
        "status": "ACTIVE" if product.published else "ARCHIVED",
    }
    if not product_id:
        data = {"handle": handle, **data}
    if product.variants:
        data.update({"productOptions": options, "variants": variants})
    if send_files:
        data["files"] = [_file(url, product.name) for url in images]
    fields = _metafields(shared)
    if record is not None:
        fields.append({"namespace": NAMESPACE, "key": IMAGE_SOURCES_KEY, "type": "json", "value": record})
    if fields:
        data["metafields"] = fields
    identifier = {"id": product_id} if product_id else {"handle": handle}
    return {"identifier": identifier, "input": data, "variants": max(1, len(product.variants))}


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


# --- adoption: what the shop already sells under these SKUs ---------------------------------------


def storefront_variants(client, skus) -> dict[str, list[dict]]:
    """sku -> the shop's variants holding exactly that SKU (each with its product), SKUS_PER_LOOKUP SKUs
    a query. Shopify's search matches loosely, so only exact SKUs are kept; a page that fills up is
    followed by the next."""
    wanted = sorted({s for s in skus if s})
    found: dict[str, list[dict]] = {}
    for start in range(0, len(wanted), SKUS_PER_LOOKUP):
        batch = wanted[start:start + SKUS_PER_LOOKUP]
        exact = set(batch)
        search = " OR ".join('sku:"{}"'.format(s.replace("\\", "\\\\").replace('"', '\\"')) for s in batch)
        after, seen = None, set()
        while True:
            page = client.graphql(VARIANTS_BY_SKU, {"query": search, "first": len(batch), "after": after})[
                "productVariants"]
            for node in page.get("nodes") or ():
                if node.get("sku") in exact and node["id"] not in seen and node.get("product"):
                    seen.add(node["id"])
                    found.setdefault(node["sku"], []).append(node)
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                break
            after = info["endCursor"]
    return found


class _Plan:
    """How one product is written: its productSet variables, or the result it already has (refused for
    want of a price, or a grouping conflict) and nothing is written."""

    __slots__ = ("product", "variables", "result", "adopted")

    def __init__(self, product: Product, variables: dict | None = None, result: PublishResult | None = None,
                 adopted: bool = False):
        self.product, self.variables, self.result, self.adopted = product, variables, result, adopted

    @property
    def by_handle(self) -> bool:
        return bool(self.variables) and "handle" in self.variables["identifier"]


def _grouping(client, owners: list[dict]) -> dict[str, list[str]]:
    """product gid -> all its SKUs, for a conflict's message (a few products, read on conflicts only)."""
    skus: dict[str, list[str]] = {}
    for start in range(0, len(owners), GROUPINGS_PER_QUERY):
        batch = owners[start:start + GROUPINGS_PER_QUERY]
        try:
            data = client.graphql(_grouping_document(len(batch)), {f"g{i}": o["id"] for i, o in enumerate(batch)})
        except TransientError:
            continue  # the message then names the SKUs the lookup found
        for i, owner in enumerate(batch):
            node = data.get(f"g{i}") or {}
            skus[owner["id"]] = [n.get("sku") or "(no SKU)" for n in (node.get("variants") or {}).get("nodes") or ()]
    return skus


def _conflict_message(product: Product, owners: list[dict], found_skus: dict[str, list[str]],
                      all_skus: dict[str, list[str]]) -> str:
    held = "; ".join(
        f"\"{o.get('title') or ''}\" (handle {o.get('handle') or '?'}, {o['id']}) holds "
        f"{', '.join(all_skus.get(o['id']) or found_skus[o['id']])}" for o in owners)
    return (f"Shopify already sells the SKUs of {product.key} grouped otherwise: {held}. Nothing was written: "
            f"group the items in the ERP as the shop does, or regroup the shop's products.")


def _known(product: Product) -> bool:
    """Ours, with every variant's id and last images recorded: written by id without a lookup."""
    return bool(product.storefront_id) and bool(product.variants) and all(
        v.storefront_id and v.images_pushed is not None for v in product.variants)


def plan_products(client, products: list[Product], currency: str) -> list[_Plan]:
    """Decide for each product how it is written (see the module's docstring): one SKU lookup for all
    of them, a read of the products named in a conflict. Raises TransientError (the lookup failed)."""
    plans = []
    for product in products:
        try:
            product_set_variables(product, currency)
        except ValueError as exc:
            plans.append(_Plan(product, result=PublishResult(product.key, ok=False, error=str(exc))))
            continue
        plans.append(_Plan(product))
    pending = []
    for plan in plans:
        if plan.result is None and _known(plan.product):
            product = plan.product
            pushed = replace(product, variants=tuple(replace(v, images=v.images_pushed) for v in product.variants))
            plan.variables = product_set_variables(
                product, currency, product_id=product.storefront_id,
                variant_ids={v.sku: v.storefront_id for v in product.variants},
                recorded_images=image_record(pushed) if product_images(pushed) else None)
        elif plan.result is None:
            pending.append(plan)
    found = storefront_variants(client, [v.sku for p in pending for v in p.product.variants])
    conflicts: list[tuple[_Plan, list[dict], dict[str, list[str]]]] = []
    for plan in pending:
        product = plan.product
        hits = [(v.sku, node) for v in product.variants for node in found.get(v.sku, ())]
        owners = {node["product"]["id"]: node["product"] for _, node in hits}
        if product.storefront_id and set(owners) <= {product.storefront_id}:
            mine = {sku: node["id"] for sku, node in hits if node["product"]["id"] == product.storefront_id}
            recorded = ((owners.get(product.storefront_id) or {}).get("images") or {}).get("value")
            plan.variables = product_set_variables(product, currency, product_id=product.storefront_id,
                                                   variant_ids=mine, recorded_images=recorded)
            continue
        if not owners:
            plan.variables = product_set_variables(product, currency)
            continue
        # Ours already, but one of its SKUs is on another product too (added there by hand): writing it
        # would sell that SKU twice, so it is a conflict like any other grouping the shop has.
        skus_found = [sku for sku, _ in hits]
        owner = next(iter(owners.values())) if len(owners) == 1 and not product.storefront_id else None
        if owner is not None and len(set(skus_found)) == len(skus_found) \
                and int((owner.get("variantsCount") or {}).get("count") or 0) == len(skus_found):
            owner_id = owner["id"]
            plan.variables = product_set_variables(
                product, currency, product_id=owner_id, variant_ids={sku: node["id"] for sku, node in hits},
                recorded_images=(owner.get("images") or {}).get("value"))
            plan.adopted = owner.get("handle") != product_handle(product.key)
            continue
        by_owner: dict[str, list[str]] = {}
        for sku, node in hits:
            by_owner.setdefault(node["product"]["id"], []).append(sku)
        conflicts.append((plan, list(owners.values()), by_owner))
    if conflicts:
        named = list({o["id"]: o for _, owners, _ in conflicts for o in owners}.values())
        all_skus = _grouping(client, named)
        for plan, owners, by_owner in conflicts:
            plan.result = PublishResult(plan.product.key, ok=False, conflict=True,
                                        error=_conflict_message(plan.product, owners, by_owner, all_skus))
    return plans


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
    """Create, adopt or update each product (one SKU lookup for all, then one productSet each), then its
    market prices. One result per product, in order; a THROTTLED or 5xx answer that outlived the
    client's retries is retryable; a grouping conflict writes nothing."""
    try:
        currency = _currency(client)
        plans = plan_products(client, products, currency)
    except TransientError as exc:
        return [PublishResult(p.key, ok=False, error=str(exc), retryable=True) for p in products]
    results: dict[str, PublishResult] = {p.product.key: p.result for p in plans if p.result is not None}
    prepared = [p for p in plans if p.result is None]
    try:
        existing = _existing_handles(client, [p.variables["identifier"]["handle"] for p in prepared if p.by_handle])
    except TransientError:
        existing = None  # unknown: `created` stays False, the publish itself does not depend on it
    published: list[Product] = []
    ids: dict[str, dict[str, str]] = {}
    queue = list(prepared)
    while queue:
        plan = queue.pop(0)
        product, variables = plan.product, plan.variables
        try:
            answer = client.graphql(PRODUCT_SET, variables)["productSet"] or {}
        except TransientError as exc:
            results[product.key] = PublishResult(product.key, ok=False, error=str(exc), retryable=True)
            continue
        errors = answer.get("userErrors") or []
        node = answer.get("product")
        if product.storefront_id and any(e.get("code") == "PRODUCT_DOES_NOT_EXIST" for e in errors):
            # The product we published was deleted in the shop: found again by its SKUs, or made anew.
            try:
                (again,) = plan_products(client, [replace(product, storefront_id="")], currency)
            except TransientError as exc:
                results[product.key] = PublishResult(product.key, ok=False, error=str(exc), retryable=True)
                continue
            if again.result is not None:
                results[product.key] = again.result
            else:
                queue.insert(0, again)
            continue
        if errors or not node:
            results[product.key] = PublishResult(product.key, ok=False, error=_message(errors) or "no product returned")
            continue
        ids[product.key] = _variant_ids(node)
        published.append(product)
        results[product.key] = PublishResult(
            product.key, ok=True, storefront_id=node["id"], variant_ids=ids[product.key], adopted=plan.adopted,
            created=plan.by_handle and existing is not None and variables["identifier"]["handle"] not in existing)
    for key, error in market_prices(client, published, ids).items():
        held = results[key]
        results[key] = PublishResult(key, ok=False, storefront_id=held.storefront_id, variant_ids=held.variant_ids,
                                     error=error, retryable="(retry)" in error, created=held.created,
                                     adopted=held.adopted)
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


def _bulk_lines(plans: list[_Plan], out) -> list[str]:
    """Write each planned product's productSet variables as one JSONL line to `out` (a binary file), one
    at a time so a large catalogue is never held as one text; the keys written, in line order."""
    written = []
    for plan in plans:
        if plan.result is None:
            out.write(json.dumps(plan.variables, separators=(",", ":")).encode() + b"\n")
            written.append(plan.product.key)
    return written


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
    """Look the products' SKUs up (adoption, as publish_products), stage the productSet variables of
    those to write as JSONL and start one bulk mutation; its gid. Products without a price in the
    shop's currency and grouping conflicts are left out (bulk_publish_results reports them). Raises
    BulkOperationInProgress while another runs (retry later)."""
    plans = plan_products(client, products, _currency(client))
    with tempfile.TemporaryFile() as body:  # the JSONL on disk, not in memory
        written = _bulk_lines(plans, body)
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
    known = {p.product.key: p.result for p in plans if p.result is not None}
    client._bulk_jobs = {**getattr(client, "_bulk_jobs", {}), handle: (list(products), known, written)}
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
    with. A line that answers a product is matched to ours by its variants' SKUs (an adopted product
    keeps the shop's handle), else by handle; a refused line by `__lineNumber` among the products
    written. After a crash only the products no line answered are planned again (their SKU lookup
    tells a conflict, which wrote nothing, from a refused line). With no products known, successes
    come back keyed by handle and refusals by line."""
    node = _poll(client, handle)
    if node.get("status") != "COMPLETED":
        state = _STATES.get(node.get("status") or "", "failed")
        if state == "running":
            raise TransientError(f"Shopify's bulk operation {handle} is still {node.get('status')}")
        raise PermanentError(f"Shopify's bulk operation {handle} ended {node.get('status')}"
                             + (f" ({node['errorCode']})" if node.get("errorCode") else ""))
    job = getattr(client, "_bulk_jobs", {}).get(handle) if products is None else None
    known = list(products) if products is not None else list(job[0]) if job else []
    by_sku = {v.sku: p for p in known for v in p.variants}
    by_handle = {product_handle(p.key): p for p in known}
    started = node.get("createdAt") or ""
    results: dict[str, PublishResult] = {}
    ids: dict[str, dict[str, str]] = {}
    failed_lines: list[tuple[int | None, str]] = []
    for line in download_lines(node.get("url")):
        number = line.get("__lineNumber")
        answer = ((line.get("data") or {}).get("productSet")) or {}
        found = answer.get("product")
        errors = answer.get("userErrors") or []
        if line.get("errors") or errors or not found:
            message = _message(errors) or "; ".join(e.get("message", "") for e in line.get("errors") or ()) or "no product"
            failed_lines.append((number if isinstance(number, int) else None, message))
            continue
        variants = _variant_ids(found)
        product = next((by_sku[s] for s in variants if s in by_sku), None) or by_handle.get(found.get("handle"))
        key = product.key if product else found.get("handle") or f"line {number}"
        ids[key] = variants
        # Created by this job: created since it started (Shopify's timestamps are to the second).
        results[key] = PublishResult(key, ok=True, storefront_id=found["id"], variant_ids=variants,
                                     created=bool(started) and (found.get("createdAt") or "") >= started,
                                     adopted=bool(product) and not product.storefront_id
                                     and found.get("handle") != product_handle(product.key))
    if job:
        unwritten, written = job[1], job[2]
    else:
        rest = [p for p in known if p.key not in results]
        try:
            unwritten = {p.product.key: p.result for p in plan_products(client, rest, _currency(client))
                         if p.result is not None} if rest else {}
        except TransientError:
            unwritten = {}  # then a refused line may be named by a neighbour's key: the line says which
        written = [p.key for p in known if p.key not in unwritten]
    for number, message in failed_lines:
        key = written[number] if number is not None and 0 <= number < len(written) else f"line {number}"
        results[key] = PublishResult(key, ok=False, error=message)
    for key, result in unwritten.items():
        results[key] = result
    for key, error in market_prices(client, [p for p in known if p.key in ids], ids).items():
        held = results[key]
        results[key] = PublishResult(key, ok=False, storefront_id=held.storefront_id, variant_ids=held.variant_ids,
                                     error=error, retryable="(retry)" in error, created=held.created,
                                     adopted=held.adopted)
    order = [p.key for p in known if p.key in results]
    return [results[k] for k in order] + [r for k, r in results.items() if k not in set(order)]
