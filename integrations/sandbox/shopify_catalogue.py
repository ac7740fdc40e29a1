"""The sandbox shop's product writes, as Shopify's Admin API (2026-04) does them: `productSet` (an upsert
by handle: publishing the same handle twice updates the one product), `productVariantsBulkUpdate`,
market price lists (`priceListFixedPricesAdd` / `priceListFixedPricesUpdate`), staged uploads
(`stagedUploadsCreate` with a POST target served by the sandbox server itself, signed like a storage
policy) and bulk mutations (`bulkOperationRunMutation`), which run in the background, one per shop at
a time, and leave a result JSONL whose lines name their input line in `__lineNumber` (Shopify does
not promise the input's order: the sandbox writes the even lines first).

What Shopify checks and the sandbox checks too: productOptions and variants come together; at most
three options; every variant names one value of every option, a value the option lists, and no two
variants the same combination; prices are decimals >= 0 on the shop currency's grid; a price list's
prices are in its currency; a variant matched by `id` belongs to the product. An input Shopify
refuses changes nothing. `productSet`'s list fields replace: a variant left out is deleted (with its
inventory item), options are replaced; scalar fields left out are kept. `identifier: {id}` updates
that product (PRODUCT_DOES_NOT_EXIST otherwise) and keeps its handle when the input has none.

Files and metafields, list fields too: `files` given, the product's media become exactly those (a file
`id` keeps that media, an `originalSource` URL is fetched as a new media every time it is sent, media
left out are deleted); a variant's `file` must be one of the product's `files` (Shopify's rule) and is
its image. `metafields` given, the product's (variant's) metafields become exactly those; without
definitions in the shop each needs a type and a value valid for it, a key of 2-64 and a namespace of
3-255 letters, digits, `-` or `_` (INVALID_METAFIELD otherwise). Products and variants answer
`metafield(namespace:, key:)`, products `variantsCount`; `productVariants(query: "sku:\"A\" OR ...")`
answers the variants holding exactly those SKUs.

Products and variants live in the sandbox's own `products` / `variants` / `inventory_items` /
`levels`, so the existing readers (productVariants, inventory levels, bulk queries) see them.
Mixed into ShopifySandbox; imports nothing of the product.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP

from graphql import GraphQLError, execute

from .currencies import currency_exponent
from .server import Request, Response

MAX_OPTIONS = 3
MAX_VARIANTS = 2048  # Shopify's default limit of variants per product
MAX_PRICES_PER_CALL = 250  # input arrays
BULK_MAX_FILE_SIZE = 100 * 1024 * 1024  # a bulk mutation's JSONL may be up to 100 MB
STAGED_UPLOAD_SECRET = b"sandbox-staged-upload-signing-key"
PRODUCT_STATUSES = ("ACTIVE", "ARCHIVED", "DRAFT", "UNLISTED")
DEFAULT_OPTION = ("Title", "Default Title")  # a product without options of its own

# (GraphQL type, field) -> the access scope Shopify requires (merged into the sandbox's FIELD_SCOPES).
CATALOGUE_SCOPES = {
    ("Mutation", "productSet"): "write_products",
    ("Mutation", "productVariantsBulkUpdate"): "write_products",
    ("Mutation", "priceListFixedPricesAdd"): "write_products",
    ("Mutation", "priceListFixedPricesUpdate"): "write_products",
    ("Query", "priceList"): "read_products",
    ("Query", "productByIdentifier"): "read_products",
}

CATALOGUE_SDL = """
scalar HTML
scalar Money
scalar UnsignedInt64
enum ProductStatus { ACTIVE ARCHIVED DRAFT UNLISTED }
extend type Query {
  productByIdentifier(identifier: ProductIdentifierInput!): Product
  priceList(id: ID!): PriceList
}
extend type Mutation {
  productSet(identifier: ProductSetIdentifiers, input: ProductSetInput!, synchronous: Boolean = true): ProductSetPayload
  productVariantsBulkUpdate(allowPartialUpdates: Boolean = false, productId: ID!, variants: [ProductVariantsBulkInput!]!): ProductVariantsBulkUpdatePayload
  priceListFixedPricesAdd(priceListId: ID!, prices: [PriceListPriceInput!]!): PriceListFixedPricesAddPayload
  priceListFixedPricesUpdate(priceListId: ID!, pricesToAdd: [PriceListPriceInput!]!, variantIdsToDelete: [ID!]!): PriceListFixedPricesUpdatePayload
  stagedUploadsCreate(input: [StagedUploadInput!]!): StagedUploadsCreatePayload
  bulkOperationRunMutation(clientIdentifier: String, mutation: String!, stagedUploadPath: String!): BulkOperationRunMutationPayload
}
extend type Product {
  handle: String!
  variantsCount: Count
  metafield(key: String!, namespace: String): Metafield
  descriptionHtml: HTML!
  productType: String!
  createdAt: DateTime!
  updatedAt: DateTime!
  options(first: Int): [ProductOption!]!
}
extend type ProductVariant {
  barcode: String
  metafield(key: String!, namespace: String): Metafield
  selectedOptions: [SelectedOption!]!
}
type ProductOptionValue { id: ID! name: String! hasVariants: Boolean! }
type ProductOption { id: ID! name: String! position: Int! values: [String!]! optionValues: [ProductOptionValue!]! }
type SelectedOption { name: String! value: String! }
enum CountPrecision { EXACT AT_LEAST }
type Count { count: Int! precision: CountPrecision! }
type Metafield { id: ID! namespace: String! key: String! type: String! value: String! }
enum FileContentType { IMAGE FILE VIDEO EXTERNAL_VIDEO MODEL_3D }
enum FileCreateInputDuplicateResolutionMode { APPEND_UUID RAISE_ERROR REPLACE }
input FileSetInput {
  alt: String contentType: FileContentType duplicateResolutionMode: FileCreateInputDuplicateResolutionMode = APPEND_UUID
  filename: String id: ID originalSource: String
}
input MetafieldInput { id: ID key: String namespace: String type: String value: String }

input ProductIdentifierInput { handle: String id: ID }
input ProductSetIdentifiers { handle: String id: ID }
input OptionValueSetInput { id: ID name: String }
input OptionSetInput { id: ID name: String position: Int values: [OptionValueSetInput!] }
input VariantOptionValueInput { id: ID name: String optionId: ID optionName: String }
input InventoryItemInput { cost: Decimal requiresShipping: Boolean sku: String tracked: Boolean }
input ProductVariantSetInput {
  barcode: String compareAtPrice: Money file: FileSetInput id: ID inventoryItem: InventoryItemInput
  metafields: [MetafieldInput!] optionValues: [VariantOptionValueInput!]! position: Int price: Money sku: String
  taxable: Boolean
}
input ProductSetInput {
  descriptionHtml: String files: [FileSetInput!] handle: String metafields: [MetafieldInput!]
  productOptions: [OptionSetInput!] productType: String
  status: ProductStatus tags: [String!] title: String variants: [ProductVariantSetInput!] vendor: String
}
enum ProductSetUserErrorCode {
  ID_NOT_ALLOWED MISSING_FIELD_REQUIRED INPUT_MISMATCH NOT_FOUND GENERIC_ERROR INVALID_VARIANT INVALID_METAFIELD
  PRODUCT_DOES_NOT_EXIST PRODUCT_VARIANT_DOES_NOT_EXIST OPTION_DOES_NOT_EXIST OPTION_VALUE_DOES_NOT_EXIST
  OPTIONS_OVER_LIMIT OPTION_VALUES_MISSING DUPLICATED_OPTION_NAME DUPLICATED_OPTION_VALUE VARIANTS_OVER_LIMIT
  PRODUCT_OPTIONS_INPUT_MISSING VARIANTS_INPUT_MISSING INVALID_PRODUCT INVALID_INPUT HANDLE_NOT_UNIQUE
}
type ProductSetUserError { code: ProductSetUserErrorCode field: [String!] message: String! }
type ProductSetPayload { product: Product userErrors: [ProductSetUserError!]! }

input ProductVariantsBulkInput {
  barcode: String compareAtPrice: Money id: ID inventoryItem: InventoryItemInput price: Money taxable: Boolean
}
enum ProductVariantsBulkUpdateUserErrorCode {
  INVALID_INPUT PRODUCT_DOES_NOT_EXIST PRODUCT_VARIANT_ID_MISSING PRODUCT_VARIANT_DOES_NOT_EXIST
  MUST_BE_FOR_THIS_PRODUCT NEGATIVE_PRICE_VALUE GREATER_THAN_OR_EQUAL_TO INVALID_VALUE
}
type ProductVariantsBulkUpdateUserError { code: ProductVariantsBulkUpdateUserErrorCode field: [String!] message: String! }
type ProductVariantsBulkUpdatePayload { product: Product productVariants: [ProductVariant!] userErrors: [ProductVariantsBulkUpdateUserError!]! }

input MoneyInput { amount: Decimal! currencyCode: String! }
input PriceListPriceInput { compareAtPrice: MoneyInput price: MoneyInput! variantId: ID! }
enum PriceListPriceUserErrorCode { BLANK PRICE_LIST_NOT_FOUND PRICE_LIST_CURRENCY_MISMATCH VARIANT_NOT_FOUND PRICE_NOT_FIXED }
type PriceListPriceUserError { code: PriceListPriceUserErrorCode field: [String!] message: String! }
type PriceListPrice { compareAtPrice: MoneyV2 price: MoneyV2! variant: ProductVariant! }
type PriceListPriceEdge { cursor: String! node: PriceListPrice! }
type PriceListPriceConnection { edges: [PriceListPriceEdge!]! nodes: [PriceListPrice!]! pageInfo: PageInfo! }
type PriceList {
  id: ID! name: String! currency: String! fixedPricesCount: Int!
  prices(first: Int, after: String): PriceListPriceConnection!
}
type PriceListFixedPricesAddPayload { prices: [PriceListPrice!] userErrors: [PriceListPriceUserError!]! }
type PriceListFixedPricesUpdatePayload {
  deletedFixedPriceVariantIds: [ID!] priceList: PriceList pricesAdded: [PriceListPrice!] userErrors: [PriceListPriceUserError!]!
}

enum StagedUploadHttpMethodType { POST PUT }
enum StagedUploadTargetGenerateUploadResource {
  COLLECTION_IMAGE FILE IMAGE MODEL_3D PRODUCT_IMAGE SHOP_IMAGE VIDEO BULK_MUTATION_VARIABLES RETURN_LABEL
  URL_REDIRECT_IMPORT DISPUTE_FILE_UPLOAD
}
input StagedUploadInput {
  filename: String! fileSize: UnsignedInt64 httpMethod: StagedUploadHttpMethodType = PUT mimeType: String!
  resource: StagedUploadTargetGenerateUploadResource!
}
type StagedUploadParameter { name: String! value: String! }
type StagedMediaUploadTarget { parameters: [StagedUploadParameter!]! resourceUrl: URL url: URL }
type StagedUploadsCreatePayload { stagedTargets: [StagedMediaUploadTarget!] userErrors: [UserError!]! }

enum BulkMutationErrorCode {
  OPERATION_IN_PROGRESS INVALID_MUTATION INVALID_STAGED_UPLOAD_FILE NO_SUCH_FILE INTERNAL_FILE_SERVER_ERROR LIMIT_REACHED
}
type BulkMutationUserError { code: BulkMutationErrorCode field: [String!] message: String! }
type BulkOperationRunMutationPayload { bulkOperation: BulkOperation userErrors: [BulkMutationUserError!]! }
"""


def _gid(kind: str, number) -> str:
    return f"gid://shopify/{kind}/{number}"


def _number(value) -> int | None:
    text = str(value or "").split("?", 1)[0].rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


def handleize(text: str) -> str:
    """Shopify's handle of a title: lower case, runs of anything but letters and digits as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def _error(code, field, message) -> dict:
    return {"code": code, "field": field, "message": message}


METAFIELD_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
METAFIELD_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{3,255}$")
METAFIELD_TYPES = ("single_line_text_field", "multi_line_text_field", "number_integer", "number_decimal", "boolean",
                   "json", "url", "date", "list.single_line_text_field", "list.number_integer")


def _metafield_problem(field: dict) -> str | None:
    """Why Shopify refuses a metafield without a definition (its namespace, key, type and value)."""
    if not METAFIELD_NAMESPACE.match(field.get("namespace") or ""):
        return "Namespace must be 3-255 characters of letters, digits, hyphens and underscores"
    if not METAFIELD_KEY.match(field.get("key") or ""):
        return "Key must be 2-64 characters of letters, digits, hyphens and underscores"
    kind, value = field.get("type"), field.get("value")
    if not kind:
        return "Type can't be blank"  # no definitions in the sandbox shop: every metafield states its type
    if kind not in METAFIELD_TYPES:
        return f"Type '{kind}' is not a valid metafield type"
    if value is None:
        return "Value can't be blank"
    if kind == "single_line_text_field" and "\n" in value:
        return "Value must be a single line of text"
    if kind == "number_integer" and not re.fullmatch(r"-?\d+", value):
        return "Value must be an integer"
    if kind == "number_decimal":
        try:
            if not Decimal(value).is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            return "Value must be a decimal"
    if kind == "boolean" and value not in ("true", "false"):
        return "Value must be true or false"
    if kind == "json" or kind.startswith("list."):
        try:
            parsed = json.loads(value)
        except ValueError:
            return "Value must be valid JSON"
        if kind == "list.single_line_text_field" and not (
                isinstance(parsed, list) and all(isinstance(v, str) and "\n" not in v for v in parsed)):
            return "Value must be a JSON array of single line texts"
    return None


class CatalogueRoot:
    """The GraphQL root fields of this mixin (mixed into the sandbox's root value)."""

    def productByIdentifier(self, info, identifier):  # noqa: N802 - the API's name
        number = self.sb._product_by_identifier(identifier)
        return self.sb._product_node(number) if number is not None else None

    def priceList(self, info, id):  # noqa: N802
        number = _number(id)
        return self.sb._price_list_node(number) if number in self.sb.price_lists else None

    def productSet(self, info, input, identifier=None, synchronous=True):  # noqa: N802
        return self.sb.product_set(info, identifier, input, synchronous)

    def productVariantsBulkUpdate(self, info, productId, variants, allowPartialUpdates=False):  # noqa: N802
        return self.sb.product_variants_bulk_update(info, productId, variants, allowPartialUpdates)

    def priceListFixedPricesAdd(self, info, priceListId, prices):  # noqa: N802
        return self.sb.price_list_fixed_prices(info, priceListId, prices, [], "priceListFixedPricesAdd")

    def priceListFixedPricesUpdate(self, info, priceListId, pricesToAdd, variantIdsToDelete):  # noqa: N802
        return self.sb.price_list_fixed_prices(info, priceListId, pricesToAdd, variantIdsToDelete,
                                               "priceListFixedPricesUpdate")

    def stagedUploadsCreate(self, info, input):  # noqa: N802
        return self.sb.staged_uploads_create(info, input)

    def bulkOperationRunMutation(self, info, mutation, stagedUploadPath, clientIdentifier=None):  # noqa: N802
        return self.sb.bulk_run_mutation(info, mutation, stagedUploadPath, clientIdentifier)


class ShopifyCatalogue:
    """Product writes, price lists, staged uploads and bulk mutations of the sandbox shop."""

    def _reset_catalogue(self) -> None:
        self.price_lists: dict[int, dict] = {}
        self.staged_uploads: dict[str, dict] = {}  # key -> {policy, signature, body, ...}
        self.bulk_mutations: dict[int, dict] = {}
        self.bulk_mutation_line_delay = 0.0  # seconds per line a bulk mutation takes (tests slow it down)
        self.bulk_mutations_paused = threading.Event()  # set: running bulk mutations wait (tests hold one)
        self.products_created = 0
        self.products_updated = 0
        self.points_spent = 0  # actual query cost charged to the bucket, all requests
        self._price_list_ids = itertools.count(31_001_000_001)
        self.handles: dict[str, int] = {}  # handle -> product number, for the products productSet wrote
        self._ids["MediaImage"] = itertools.count(29_001_000_001)
        self._ids["Metafield"] = itertools.count(19_001_000_001)
        self.media: dict[int, dict] = {}  # media number -> {number, product, source, alt, content_type}
        self.media_created = 0  # files fetched from an originalSource (each one a new media)

    def register_catalogue_routes(self) -> None:
        self.route("POST", r"/_staged-uploads/?", self.handle_staged_upload)
        self.route("GET", r"/_bulk-mutations/(?P<number>\d+)\.jsonl", self.handle_bulk_mutation_result)
        self.route("POST", r"/_sandbox/price-lists", self.admin_price_list)
        self.route("GET", r"/_sandbox/products", self.admin_products)

    def configure_catalogue(self, options: dict) -> None:
        if "bulk_mutation_line_delay" in options:
            self.bulk_mutation_line_delay = float(options["bulk_mutation_line_delay"])
        if "bulk_mutations_paused" in options:
            if options["bulk_mutations_paused"]:
                self.bulk_mutations_paused.set()
            else:
                self.bulk_mutations_paused.clear()

    # --- helpers for tests and the demo --------------------------------------------------------------

    def add_price_list(self, name: str, currency: str) -> str:
        """A market's price list (fixed prices in one currency), as a merchant sets one up in Markets."""
        with self.lock:
            number = next(self._price_list_ids)
            self.price_lists[number] = {"number": number, "name": name, "currency": currency.upper(), "prices": {}}
            return _gid("PriceList", number)

    def fixed_price(self, price_list, sku: str) -> dict | None:
        """{price, compare_at_price, currency} of a SKU's fixed price on a price list, None without one."""
        with self.lock:
            plist = self.price_lists[_number(price_list)]
            variant = self.variant_by_sku(sku)
            row = plist["prices"].get(variant["number"]) if variant else None
            return {**row, "currency": plist["currency"]} if row else None

    def product_by_handle(self, handle: str) -> dict | None:
        with self.lock:
            number = self._product_by_handle(handle)
            return self.products[number] if number is not None else None

    def _product_handle(self, product: dict) -> str:
        return product.get("handle") or handleize(product["title"])

    def _product_by_handle(self, handle) -> int | None:
        number = self.handles.get(handle)
        if number in self.products and self.products[number].get("handle") == handle:
            return number
        # Products made by add_product (the demo's, tests') have the handle of their title.
        return next((n for n, p in self.products.items() if not p.get("handle") and handleize(p["title"]) == handle),
                    None)

    def _product_by_identifier(self, identifier: dict) -> int | None:
        if identifier.get("id"):
            number = _number(identifier["id"])
            return number if number in self.products else None
        if identifier.get("handle"):
            return self._product_by_handle(identifier["handle"])
        return None

    def _scoped(self, info, root: str) -> None:
        scope = CATALOGUE_SCOPES.get(("Mutation", root)) or CATALOGUE_SCOPES.get(("Query", root))
        if scope and scope not in info.context["scopes"]:
            required = f"`{scope}` access scope."
            raise GraphQLError(f"Access denied for {root} field. Required access: {required}",
                               extensions={"code": "ACCESS_DENIED", "requiredAccess": required})

    def _amount(self, value, where: list, code: str, errors: list, *, currency: str | None = None) -> str | None:
        """A price as the exact decimal string Shopify keeps (the currency's decimals), or a user error."""
        if value is None:
            return None
        currency = currency or self.currency
        try:
            amount = Decimal(str(value))
        except (InvalidOperation, ValueError):
            errors.append(_error(code, where, f"Price {value!r} is not a valid decimal"))
            return None
        if not amount.is_finite():
            errors.append(_error(code, where, f"Price {value!r} is not a valid decimal"))
            return None
        if amount < 0:
            errors.append(_error(code, where, "Price must be greater than or equal to 0"))
            return None
        grid = Decimal(1).scaleb(-currency_exponent(currency))
        if amount != amount.quantize(grid):
            errors.append(_error(code, where, f"Price {value} has more decimals than {currency} allows"))
            return None
        return str(amount.quantize(grid))

    # --- GraphQL nodes (fields the base nodes do not have) ------------------------------------------

    def _catalogue_product_fields(self, product: dict) -> dict:
        number = product["number"]
        options = product.get("options") or [{"id": _gid("ProductOption", number * 10), "name": DEFAULT_OPTION[0],
                                               "values": [DEFAULT_OPTION[1]]}]

        def option_nodes(info, first=None):
            used = {(name, value) for v in product["variants"] for name, value in self._variant_options(self.variants[v])}
            return [{"id": o["id"], "name": o["name"], "position": i + 1, "values": list(o["values"]),
                     "optionValues": [{"id": f"{o['id']}/{j}", "name": value, "hasVariants": (o["name"], value) in used}
                                      for j, value in enumerate(o["values"])]}
                    for i, o in enumerate(options)][:first]

        stamp = product.get("created") or "2026-01-01T00:00:00Z"
        return {"handle": self._product_handle(product), "status": product.get("status") or "ACTIVE",
                "variantsCount": {"count": len(product["variants"]), "precision": "EXACT"},
                "metafield": self._metafield_reader(product),
                "descriptionHtml": product.get("description_html") or "", "productType": product.get("product_type") or "",
                "createdAt": stamp, "updatedAt": product.get("updated") or stamp, "options": option_nodes}

    def _variant_options(self, variant: dict) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in variant.get("options") or [DEFAULT_OPTION]]

    @staticmethod
    def _metafield_reader(owner: dict):
        def metafield(info, key, namespace=None):
            row = (owner.get("metafields") or {}).get((namespace or "$app", key))
            return {"id": _gid("Metafield", row["number"]), "namespace": namespace or "$app", "key": key,
                    "type": row["type"], "value": row["value"]} if row else None

        return metafield

    def _catalogue_variant_fields(self, variant: dict) -> dict:
        return {"barcode": variant.get("barcode"), "metafield": self._metafield_reader(variant),
                "selectedOptions": [{"name": n, "value": v} for n, v in self._variant_options(variant)]}

    def _price_list_node(self, number: int) -> dict:
        from . import shopify_graphql as gql  # it builds its schema from CATALOGUE_SDL: imported late

        plist = self.price_lists[number]

        def prices(info, first=None, after=None):
            rows = sorted(v for v in plist["prices"] if v in self.variants)
            return gql.connection(rows, first=first, after=after, key=lambda v: v,
                                  node=lambda v: self._price_node(plist, v))

        return {"id": _gid("PriceList", number), "name": plist["name"], "currency": plist["currency"],
                "fixedPricesCount": len(plist["prices"]), "prices": prices}

    def _price_node(self, plist: dict, variant: int) -> dict:
        row = plist["prices"][variant]
        money = lambda amount: {"amount": amount, "currencyCode": plist["currency"]}  # noqa: E731
        return {"price": money(row["price"]),
                "compareAtPrice": money(row["compare_at_price"]) if row.get("compare_at_price") else None,
                "variant": lambda info: self._variant_node(variant)}

    # --- productSet ------------------------------------------------------------------------------------

    def product_set(self, info, identifier: dict | None, data: dict, synchronous: bool = True) -> dict:
        self._scoped(info, "productSet")
        self._count_call("productSet")
        errors: list[dict] = []
        identifier = identifier or {}
        number = None
        if identifier.get("id") and identifier.get("handle"):
            errors.append(_error("INVALID_INPUT", ["identifier"], "Only one identifier may be given"))
        elif identifier.get("id"):
            number = self._product_by_identifier(identifier)
            if number is None:
                errors.append(_error("PRODUCT_DOES_NOT_EXIST", ["identifier", "id"], "Product does not exist"))
        elif identifier.get("handle"):
            number = self._product_by_handle(identifier["handle"])
        handle = data.get("handle")
        if handle is not None:
            handle = handleize(handle)
            if not handle:
                errors.append(_error("INVALID_INPUT", ["input", "handle"], "Handle can't be blank"))
            holder = self._product_by_handle(handle)
            if holder is not None and holder != number:
                errors.append(_error("HANDLE_NOT_UNIQUE", ["input", "handle"],
                                     f"Handle '{handle}' already in use. Please provide a new handle."))
        elif number is None and identifier.get("handle"):
            handle = handleize(identifier["handle"])
        if number is None and not (data.get("title") or "").strip():
            errors.append(_error("INVALID_PRODUCT", ["input", "title"], "Title can't be blank"))
        product = self.products.get(number) if number is not None else None
        plan = self._plan_variants(product, data, errors)
        files = self._plan_files(product, data, errors)
        self._check_metafields(data.get("metafields"), ["input", "metafields"], errors)
        for i, spec in enumerate(data.get("variants") or ()):
            self._check_metafields(spec.get("metafields"), ["input", "variants", str(i), "metafields"], errors)
        if errors:
            return {"product": None, "userErrors": errors}

        stamp = _now()
        if product is None:
            number = self._next_id("Product")
            product = self.products[number] = {"number": number, "title": data["title"], "variants": [],
                                               "created": stamp, "handle": handle or handleize(data["title"])}
            self.products_created += 1
        else:
            self.products_updated += 1
        product["handle"] = handle or self._product_handle(product)  # kept through a change of title
        self.handles[product["handle"]] = number
        for key, field in (("title", "title"), ("descriptionHtml", "description_html"),
                           ("productType", "product_type"), ("status", "status"), ("vendor", "vendor"),
                           ("tags", "tags")):
            if data.get(key) is not None:
                product[field] = data[key]
        product["updated"] = stamp
        media = self._apply_files(product, files) if files is not None else None
        if data.get("metafields") is not None:
            product["metafields"] = self._stored_metafields(data["metafields"], product.get("metafields"))
        if plan is not None:
            options, variants = plan
            product["options"] = options
            self._apply_variants(product, variants, media)
        return {"product": self._product_node(number), "userErrors": []}

    # --- files and metafields (list fields of productSet: what is sent is what there is) -------------

    def _plan_files(self, product: dict | None, data: dict, errors: list) -> list | None:
        """Check `files` and the variants' `file`; [(existing media number | None, file)] or None (not sent)."""
        files = data.get("files")
        sources = set()
        planned = None
        if files is not None:
            planned = []
            for i, spec in enumerate(files):
                at = ["input", "files", str(i)]
                if spec.get("id"):
                    number = _number(spec["id"])
                    if product is None or self.media.get(number, {}).get("product") != product["number"]:
                        errors.append(_error("INVALID_INPUT", [*at, "id"], "File does not exist"))
                        continue
                    planned.append((number, spec))
                    sources.add(("id", number))
                    continue
                source = spec.get("originalSource") or ""
                if not re.match(r"^https?://\S+$", source):
                    errors.append(_error("INVALID_INPUT", [*at, "originalSource"],
                                         "An originalSource URL or the id of an existing file is required"))
                    continue
                planned.append((None, spec))
                sources.add(("source", source))
        for i, spec in enumerate(data.get("variants") or ()):
            chosen = spec.get("file")
            if chosen is None:
                continue
            wanted = ("id", _number(chosen["id"])) if chosen.get("id") else ("source", chosen.get("originalSource"))
            if wanted not in sources:
                errors.append(_error("INVALID_VARIANT", ["input", "variants", str(i), "file"],
                                     "Any file specified for a variant must also be specified in the files input "
                                     "for the product"))
        return planned

    def _apply_files(self, product: dict, planned: list) -> dict:
        """The product's media become the files sent: an `id` keeps that media, an originalSource is
        fetched as a new media, media not sent are deleted. Returns (kind, value) -> media number."""
        resolved, keep = {}, []
        for number, spec in planned:
            if number is None:
                number = self._next_id("MediaImage")
                self.media[number] = {"number": number, "product": product["number"], "source": spec["originalSource"],
                                      "alt": spec.get("alt") or "", "content_type": spec.get("contentType") or "IMAGE"}
                self.media_created += 1
                resolved[("source", spec["originalSource"])] = number
            elif spec.get("alt") is not None:
                self.media[number]["alt"] = spec["alt"]
            resolved[("id", number)] = number
            keep.append(number)
        for gone in [n for n in product.get("media") or () if n not in keep]:
            self.media.pop(gone, None)
        product["media"] = keep
        return resolved

    def _check_metafields(self, fields, at: list, errors: list) -> None:
        for i, field in enumerate(fields or ()):
            problem = _metafield_problem(field)
            if problem:
                errors.append(_error("INVALID_METAFIELD", [*at, str(i), "value"], problem))

    def _stored_metafields(self, fields: list, held: dict | None) -> dict:
        held = held or {}
        stored = {}
        for field in fields:
            slot = (field["namespace"], field["key"])
            number = held[slot]["number"] if slot in held else self._next_id("Metafield")
            stored[slot] = {"number": number, "type": field["type"], "value": field["value"]}
        return stored

    def product_media(self, product) -> list[dict]:
        """Tests: a product's media in order ({id, source, alt})."""
        with self.lock:
            row = self.products[_number(product) if str(product).startswith("gid://") else product]
            return [{"id": _gid("MediaImage", n), "source": self.media[n]["source"], "alt": self.media[n]["alt"]}
                    for n in row.get("media") or ()]

    def metafields_of(self, owner: dict) -> dict:
        """Tests: {"namespace.key": (type, value)} of a product or variant row."""
        return {f"{ns}.{key}": (row["type"], row["value"]) for (ns, key), row in (owner.get("metafields") or {}).items()}

    def _plan_variants(self, product: dict | None, data: dict, errors: list) -> tuple | None:
        """Check productOptions and variants; return (options, [(existing variant number | None, spec)])."""
        options_in, variants_in = data.get("productOptions"), data.get("variants")
        if options_in is None and variants_in is None:
            return None
        if variants_in is not None and options_in is None:
            errors.append(_error("PRODUCT_OPTIONS_INPUT_MISSING", ["input", "productOptions"],
                                 "Product options input is required when updating variants"))
            return None
        if options_in is not None and variants_in is None:
            errors.append(_error("VARIANTS_INPUT_MISSING", ["input", "variants"],
                                 "Variants input is required when updating product options"))
            return None
        if len(options_in) > MAX_OPTIONS:
            errors.append(_error("OPTIONS_OVER_LIMIT", ["input", "productOptions"],
                                 f"Can only specify a maximum of {MAX_OPTIONS} options"))
            return None
        if len(variants_in) > MAX_VARIANTS:
            errors.append(_error("VARIANTS_OVER_LIMIT", ["input", "variants"],
                                 f"Can only specify a maximum of {MAX_VARIANTS} variants"))
            return None
        options, names = [], set()
        for i, option in enumerate(options_in):
            name = (option.get("name") or "").strip()
            values = [(v.get("name") or "").strip() for v in option.get("values") or ()]
            if not name:
                errors.append(_error("INVALID_INPUT", ["input", "productOptions", str(i), "name"], "Option name can't be blank"))
            if name in names:
                errors.append(_error("DUPLICATED_OPTION_NAME", ["input", "productOptions", str(i), "name"],
                                     f"Duplicated option name '{name}'"))
            names.add(name)
            if not values or "" in values:
                errors.append(_error("OPTION_VALUES_MISSING", ["input", "productOptions", str(i), "values"],
                                     "Option values can't be blank"))
            if len(set(values)) != len(values):
                errors.append(_error("DUPLICATED_OPTION_VALUE", ["input", "productOptions", str(i), "values"],
                                     f"Duplicated option value for option '{name}'"))
            options.append({"id": _gid("ProductOption", f"{product['number'] if product else 0}{i}"),
                            "name": name, "values": values})
        by_name = {o["name"]: o for o in options}
        existing = {}
        if product is not None:
            for v in product["variants"]:
                existing[tuple(sorted(self._variant_options(self.variants[v])))] = v
        planned, combos = [], set()
        for i, spec in enumerate(variants_in):
            at = ["input", "variants", str(i)]
            chosen = []
            for value in spec.get("optionValues") or ():
                option = by_name.get(value.get("optionName") or "")
                if option is None:
                    errors.append(_error("OPTION_DOES_NOT_EXIST", [*at, "optionValues"],
                                         f"Option '{value.get('optionName')}' does not exist"))
                    continue
                if value.get("name") not in option["values"]:
                    errors.append(_error("OPTION_VALUE_DOES_NOT_EXIST", [*at, "optionValues"],
                                         f"Option value '{value.get('name')}' does not exist for option '{option['name']}'"))
                    continue
                chosen.append((option["name"], value["name"]))
            if sorted(n for n, _ in chosen) != sorted(by_name):
                errors.append(_error("INVALID_VARIANT", [*at, "optionValues"],
                                     "Each variant must have exactly one value for every option"))
            combo = tuple(sorted(chosen))
            if combo in combos:
                errors.append(_error("INVALID_VARIANT", at, f"The variant '{' / '.join(v for _, v in chosen)}' already exists."))
            combos.add(combo)
            price = self._amount(spec.get("price"), [*at, "price"], "INVALID_VARIANT", errors)
            compare_at = self._amount(spec.get("compareAtPrice"), [*at, "compareAtPrice"], "INVALID_VARIANT", errors)
            match = None
            if spec.get("id"):
                match = _number(spec["id"])
                if product is None or match not in product["variants"]:
                    errors.append(_error("PRODUCT_VARIANT_DOES_NOT_EXIST", [*at, "id"], "Product variant does not exist"))
            elif combo in existing:
                match = existing[combo]
            order = {o["name"]: k for k, o in enumerate(options)}
            planned.append((match, {"options": sorted(chosen, key=lambda p: order.get(p[0], 0)), "price": price,
                                    "price_given": "price" in spec, "compare_at_price": compare_at,
                                    "compare_given": "compareAtPrice" in spec, "barcode": spec.get("barcode"),
                                    "barcode_given": "barcode" in spec, "file": spec.get("file"),
                                    "metafields": spec.get("metafields"),
                                    "sku": (spec.get("inventoryItem") or {}).get("sku", spec.get("sku"))}))
        return options, planned

    def _apply_variants(self, product: dict, planned: list, media: dict | None = None) -> None:
        keep = []
        for match, spec in planned:
            if match is None:
                match = self._next_id("ProductVariant")
                item = self._next_id("InventoryItem")
                self.variants[match] = {"number": match, "sku": "", "title": "", "price": str(Decimal(0).quantize(
                    Decimal(1).scaleb(-currency_exponent(self.currency)))), "compare_at_price": None,
                    "product": product["number"], "inventory_item": item, "barcode": None}
                self.inventory_items[item] = {"number": item, "variant": match, "tracked": True}
                for location in self.locations:
                    self.levels[(item, location)] = self._empty_level()
            variant = self.variants[match]
            variant["options"] = [list(pair) for pair in spec["options"]]
            values = [v for _, v in spec["options"]]
            variant["title"] = " / ".join(values) if spec["options"] and list(spec["options"][0]) != list(DEFAULT_OPTION) \
                else DEFAULT_OPTION[1]
            if spec["price_given"] and spec["price"] is not None:
                variant["price"] = spec["price"]
            if spec["compare_given"]:
                variant["compare_at_price"] = spec["compare_at_price"]
            if spec["barcode_given"]:
                variant["barcode"] = spec["barcode"]
            if spec["sku"] is not None:
                variant["sku"] = spec["sku"]
            if media is not None:  # files sent: the variant's image is its file (none: no image)
                chosen = spec["file"]
                wanted = None if chosen is None else ("id", _number(chosen["id"])) if chosen.get("id") \
                    else ("source", chosen.get("originalSource"))
                variant["media"] = [media[wanted]] if wanted in media else []
            if spec["metafields"] is not None:
                variant["metafields"] = self._stored_metafields(spec["metafields"], variant.get("metafields"))
            keep.append(match)
        for gone in [v for v in product["variants"] if v not in keep]:
            self._delete_variant(gone)
        product["variants"] = keep

    def _delete_variant(self, number: int) -> None:
        variant = self.variants.pop(number)
        item = variant["inventory_item"]
        self.inventory_items.pop(item, None)
        for key in [k for k in self.levels if k[0] == item]:
            del self.levels[key]
        for plist in self.price_lists.values():
            plist["prices"].pop(number, None)

    # --- productVariantsBulkUpdate -------------------------------------------------------------------

    def product_variants_bulk_update(self, info, product_id, variants: list, allow_partial: bool = False) -> dict:
        self._scoped(info, "productVariantsBulkUpdate")
        self._count_call("productVariantsBulkUpdate")
        number = _number(product_id)
        if number not in self.products:
            return {"product": None, "productVariants": None, "userErrors": [
                _error("PRODUCT_DOES_NOT_EXIST", ["productId"], "Product does not exist")]}
        product = self.products[number]
        errors, changes = [], []
        for i, spec in enumerate(variants):
            at = ["variants", str(i)]
            if not spec.get("id"):
                errors.append(_error("PRODUCT_VARIANT_ID_MISSING", [*at, "id"], "Product variant is missing ID attribute"))
                continue
            variant = _number(spec["id"])
            if variant not in self.variants:
                errors.append(_error("PRODUCT_VARIANT_DOES_NOT_EXIST", [*at, "id"], "Product variant does not exist"))
                continue
            if variant not in product["variants"]:
                errors.append(_error("MUST_BE_FOR_THIS_PRODUCT", [*at, "id"], "Product variant does not exist"))
                continue
            price = self._amount(spec.get("price"), [*at, "price"], "INVALID_INPUT", errors)
            compare_at = self._amount(spec.get("compareAtPrice"), [*at, "compareAtPrice"], "INVALID_INPUT", errors)
            changes.append((variant, spec, price, compare_at))
        if errors and not allow_partial:
            return {"product": None, "productVariants": None, "userErrors": errors}
        for variant, spec, price, compare_at in changes:
            row = self.variants[variant]
            if "price" in spec and price is not None:
                row["price"] = price
            if "compareAtPrice" in spec:
                row["compare_at_price"] = compare_at
            if "barcode" in spec:
                row["barcode"] = spec["barcode"]
            if (spec.get("inventoryItem") or {}).get("sku") is not None:
                row["sku"] = spec["inventoryItem"]["sku"]
        product["updated"] = _now()
        return {"product": self._product_node(number),
                "productVariants": [self._variant_node(v) for v, *_ in changes], "userErrors": errors}

    # --- price lists --------------------------------------------------------------------------------

    def price_list_fixed_prices(self, info, price_list_id, prices: list, deletions: list, root: str) -> dict:
        self._scoped(info, root)
        self._count_call(root)
        added_key = "prices" if root == "priceListFixedPricesAdd" else "pricesAdded"
        number = _number(price_list_id)
        empty = {added_key: None, "userErrors": []}
        if root != "priceListFixedPricesAdd":
            empty.update({"priceList": None, "deletedFixedPriceVariantIds": None})
        if number not in self.price_lists:
            return {**empty, "userErrors": [_error("PRICE_LIST_NOT_FOUND", ["priceListId"], "Price list not found.")]}
        plist = self.price_lists[number]
        errors, rows = [], []
        arg = "prices" if root == "priceListFixedPricesAdd" else "pricesToAdd"
        if len(prices) > MAX_PRICES_PER_CALL:
            errors.append(_error("BLANK", [arg], f"The input array size of {len(prices)} is greater than the maximum "
                                                 f"allowed of {MAX_PRICES_PER_CALL}."))
        for i, entry in enumerate(prices):
            at = [arg, str(i)]
            variant = _number(entry.get("variantId"))
            if variant not in self.variants:
                errors.append(_error("VARIANT_NOT_FOUND", [*at, "variantId"], "Variant not found."))
                continue
            amounts = {}
            for key in ("price", "compareAtPrice"):
                money = entry.get(key)
                if money is None:
                    continue
                if str(money.get("currencyCode") or "").upper() != plist["currency"]:
                    errors.append(_error("PRICE_LIST_CURRENCY_MISMATCH", [*at, key, "currencyCode"],
                                         "Currency must match price list currency."))
                    continue
                amounts[key] = self._amount(money.get("amount"), [*at, key, "amount"], "BLANK", errors,
                                            currency=plist["currency"])
            rows.append((variant, amounts))
        gone = [_number(v) for v in deletions]
        if errors:
            return {**empty, "userErrors": errors}
        for variant, amounts in rows:
            plist["prices"][variant] = {"price": amounts.get("price"), "compare_at_price": amounts.get("compareAtPrice")}
        for variant in gone:
            plist["prices"].pop(variant, None)
        answer = {added_key: [self._price_node(plist, v) for v, _ in rows], "userErrors": []}
        if root != "priceListFixedPricesAdd":
            answer.update({"priceList": self._price_list_node(number),
                           "deletedFixedPriceVariantIds": [_gid("ProductVariant", v) for v in gone]})
        return answer

    # --- staged uploads -----------------------------------------------------------------------------

    def _sign(self, policy: str) -> str:
        return hmac.new(STAGED_UPLOAD_SECRET, policy.encode(), hashlib.sha256).hexdigest()

    def staged_uploads_create(self, info, inputs: list) -> dict:
        self._count_call("stagedUploadsCreate")
        targets, errors = [], []
        host = info.context.get("host") or "127.0.0.1"
        url = f"http://{host}{self.mount}/_staged-uploads/"
        for i, spec in enumerate(inputs):
            if spec.get("resource") != "BULK_MUTATION_VARIABLES":
                errors.append({"field": ["input", str(i), "resource"],
                               "message": "The Shopify sandbox stages BULK_MUTATION_VARIABLES uploads only"})
                continue
            if spec.get("httpMethod", "PUT") != "POST":
                errors.append({"field": ["input", str(i), "httpMethod"],
                               "message": "The Shopify sandbox stages bulk variables with httpMethod POST only"})
                continue
            size = int(spec.get("fileSize") or 0)
            if size > BULK_MAX_FILE_SIZE:
                errors.append({"field": ["input", str(i), "fileSize"],
                               "message": f"The file size must be at most {BULK_MAX_FILE_SIZE} bytes"})
                continue
            key = f"tmp/{self.shop_domain.split('.')[0]}/bulk/{uuid.uuid4()}/{spec['filename']}"
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            policy = base64.b64encode(json.dumps({
                "conditions": [{"Content-Type": spec["mimeType"]}, {"success_action_status": "201"},
                               {"acl": "private"}, ["content-length-range", 1, BULK_MAX_FILE_SIZE],
                               {"bucket": "shopify-staged-uploads"}, {"key": key}, {"x-goog-date": stamp}],
                "expiration": _iso(datetime.fromtimestamp(time.time() + 7 * 86400, timezone.utc)),
            }, separators=(",", ":")).encode()).decode()
            signature = self._sign(policy)
            self.staged_uploads[key] = {"key": key, "policy": policy, "signature": signature, "body": None,
                                        "mime": spec["mimeType"], "token": info.context.get("token")}
            parameters = [("Content-Type", spec["mimeType"]), ("success_action_status", "201"), ("acl", "private"),
                          ("key", key), ("x-goog-date", stamp), ("x-goog-credential", "sandbox/shopify-staged-uploads"),
                          ("x-goog-algorithm", "GOOG4-HMAC-SHA256"), ("x-goog-signature", signature), ("policy", policy)]
            targets.append({"url": url, "resourceUrl": f"{url}{key}",
                            "parameters": [{"name": n, "value": v} for n, v in parameters]})
        return {"stagedTargets": targets, "userErrors": errors}

    @staticmethod
    def _form(request: Request) -> dict[str, tuple[bytes, str | None]]:
        """multipart/form-data -> {field name: (bytes, filename)}."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise ValueError("expected multipart/form-data")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + request.body)
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                fields[name] = (part.get_payload(decode=True) or b"", part.get_filename())
        return fields

    def handle_staged_upload(self, request: Request) -> Response:
        """The storage endpoint a staged target points at: a POST form with the target's parameters and,
        last, the file; answered 201 with the stored key, like a storage bucket's POST policy upload."""
        try:
            form = self._form(request)
        except ValueError as exc:
            return _storage_error(400, "InvalidArgument", str(exc))
        key = form.get("key", (b"", None))[0].decode()
        with self.lock:
            staged = self.staged_uploads.get(key)
            policy = form.get("policy", (b"", None))[0].decode()
            signature = form.get("x-goog-signature", (b"", None))[0].decode()
            if staged is None or policy != staged["policy"] or not hmac.compare_digest(signature, staged["signature"]):
                return _storage_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed")
            if "file" not in form:
                return _storage_error(400, "InvalidArgument", "The file field is missing")
            body = form["file"][0]
            if len(body) > BULK_MAX_FILE_SIZE:
                return _storage_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            staged["body"] = body
        xml = (f"<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{request.path}{key}</Location>"
               f"<Bucket>shopify-staged-uploads</Bucket><Key>{key}</Key>"
               f"<ETag>\"{hashlib.md5(body).hexdigest()}\"</ETag></PostResponse>")  # noqa: S324 - an ETag, not security
        return Response(201, xml.encode(), {"Content-Type": "application/xml"})

    # --- bulk mutations -----------------------------------------------------------------------------

    def bulk_run_mutation(self, info, mutation: str, staged_upload_path: str, client_identifier=None) -> dict:
        from . import shopify_graphql as gql

        self._count_call("bulkOperationRunMutation")
        running = [op for op in self.bulk_mutations.values() if op["status"] in ("CREATED", "RUNNING")]
        if running:
            return {"bulkOperation": None, "userErrors": [_error(
                "OPERATION_IN_PROGRESS", None, f"A bulk mutation operation for this app and shop is already in "
                f"progress: {_gid('BulkOperation', running[0]['number'])}.")]}
        staged = self.staged_uploads.get(staged_upload_path)
        if staged is None or staged["body"] is None:
            return {"bulkOperation": None, "userErrors": [_error(
                "NO_SUCH_FILE", ["stagedUploadPath"], "The JSONL file could not be found. Try uploading the file again, "
                "and check that you've entered the URL correctly for the stagedUploadPath mutation argument.")]}
        problems = [p["message"] for p in gql.published_problems(info.context["version"], mutation, None, {})]
        document = None
        if not problems:
            problems = [f"The Shopify sandbox does not implement this: {p['message']}"
                        for p in gql.implemented_problems(mutation)]
        if not problems:
            document = gql.parse_document(mutation)
            operations = [d for d in document.definitions if getattr(d, "operation", None) is not None]
            if len(operations) != 1 or operations[0].operation.value != "mutation" \
                    or len(operations[0].selection_set.selections) != 1:
                problems = ["The bulk mutation must be a single mutation operation with one mutation field"]
        if problems:
            return {"bulkOperation": None, "userErrors": [_error("INVALID_MUTATION", ["mutation"], p) for p in problems]}
        lines = []
        try:
            for raw in staged["body"].decode("utf-8").splitlines():
                if raw.strip():
                    value = json.loads(raw)
                    if not isinstance(value, dict):
                        raise ValueError("a line is not a JSON object")
                    lines.append(value)
        except (ValueError, UnicodeDecodeError):
            return {"bulkOperation": None, "userErrors": [_error(
                "INVALID_STAGED_UPLOAD_FILE", ["stagedUploadPath"], "The JSONL file submitted via the stagedUploadsCreate "
                "mutation is invalid. Update the file and try again.")]}
        number = self._next_id("BulkOperation")
        op = self.bulk_mutations[number] = {
            "number": number, "status": "CREATED", "query": mutation, "document": document, "lines": lines,
            "results": [], "done": 0, "created": _now(), "completed": None, "error": None,
            "client_identifier": client_identifier, "context": dict(info.context), "root": info.root_value,
            "generation": self._generation,
        }
        threading.Thread(target=self._run_bulk_mutation, args=(op,), name=f"shopify-bulk-{number}", daemon=True).start()
        return {"bulkOperation": self._bulk_mutation_node(op), "userErrors": []}

    def _run_bulk_mutation(self, op: dict) -> None:
        """Each line of the file is one execution of the mutation with that line as its variables."""
        from . import shopify_graphql as gql

        operation = next(d for d in op["document"].definitions if getattr(d, "operation", None) is not None)
        root_field = operation.selection_set.selections[0].name.value
        with self.lock:
            if op["generation"] != self._generation:
                return
            op["status"] = "RUNNING"
        for index, variables in enumerate(op["lines"]):
            while self.bulk_mutations_paused.is_set() and op["generation"] == self._generation:
                time.sleep(0.01)
            if self.bulk_mutation_line_delay:
                time.sleep(self.bulk_mutation_line_delay)
            with self.lock:
                if op["generation"] != self._generation:
                    return  # the shop was reset meanwhile
                line = self._bulk_mutation_line(op, gql, operation, root_field, variables)
                line["__lineNumber"] = index
                op["results"].append(line)
                op["done"] += 1
            time.sleep(0)  # let a waiting request (a poll) take the lock: CPython's locks are not fair
        with self.lock:
            if op["generation"] != self._generation:
                return
            # Shopify does not promise the input's order: evens first, then odds.
            op["results"].sort(key=lambda r: (r["__lineNumber"] % 2, r["__lineNumber"]))
            op["body"] = self._bulk_mutation_body(op)  # written once, as Shopify writes its result file
            op["status"] = "COMPLETED"
            op["completed"] = _now()

    def _bulk_mutation_line(self, op, gql, operation, root_field: str, variables: dict) -> dict:
        scope = CATALOGUE_SCOPES.get(("Mutation", root_field))
        if scope and scope not in op["context"]["scopes"]:
            return {"errors": [{"message": f"Access denied for {root_field} field. Required access: `{scope}` "
                                           "access scope.", "extensions": {"code": "ACCESS_DENIED"}}]}
        from graphql.execution.values import get_variable_values

        coerced = get_variable_values(gql.published_schema(op["context"]["version"]),
                                      operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return {"errors": [error.formatted for error in coerced]}
        result = execute(gql.SCHEMA, op["document"], root_value=op["root"], context_value=op["context"],
                         variable_values=variables)
        line = {"data": result.data}
        if result.errors:
            line["errors"] = [error.formatted for error in result.errors]
        return line

    def _bulk_mutation_node(self, op: dict) -> dict:
        done = op["status"] == "COMPLETED"
        host = op["context"].get("host") or "127.0.0.1"
        body = op.get("body", b"") if done else b""
        return {
            "id": _gid("BulkOperation", op["number"]), "status": op["status"], "type": "MUTATION",
            "errorCode": op.get("error"), "createdAt": op["created"], "completedAt": op["completed"],
            "objectCount": str(op["done"]), "rootObjectCount": str(op["done"]),
            "fileSize": str(len(body)) if done and body else None,
            "url": f"http://{host}{self.mount}/_bulk-mutations/{op['number']}.jsonl" if done and body else None,
            "partialDataUrl": None, "query": op["query"],
        }

    @staticmethod
    def _bulk_mutation_body(op: dict) -> bytes:
        return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in op["results"])

    def bulk_mutation_operation(self, info, number: int) -> dict | None:
        op = self.bulk_mutations.get(number)
        return self._bulk_mutation_node(op) if op is not None else None

    def wait_for_bulk_mutations(self, timeout: float = 30.0) -> None:
        """Tests: until no bulk mutation is CREATED or RUNNING."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not any(op["status"] in ("CREATED", "RUNNING") for op in self.bulk_mutations.values()):
                    return
            time.sleep(0.01)
        raise TimeoutError("a bulk mutation is still running")

    def handle_bulk_mutation_result(self, request: Request) -> Response:
        with self.lock:
            op = self.bulk_mutations.get(int(request.params["number"]))
            if op is None or op["status"] != "COMPLETED":
                return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
            body = op.get("body") or self._bulk_mutation_body(op)
        return Response(200, body, {"Content-Type": "application/jsonl"})

    # --- admin endpoints ------------------------------------------------------------------------------

    def admin_price_list(self, request: Request) -> Response:
        body = request.json() or {}
        if not body.get("name") or not body.get("currency"):
            return Response.json({"error": "name and currency are required"}, 400)
        return Response.json({"id": self.add_price_list(body["name"], body["currency"])}, 201)

    def admin_products(self, request: Request) -> Response:
        with self.lock:
            rows = [{"id": _gid("Product", n), "handle": self._product_handle(p), "title": p["title"],
                     "status": p.get("status") or "ACTIVE",
                     "variants": [{"id": _gid("ProductVariant", v), "sku": self.variants[v]["sku"],
                                   "price": self.variants[v]["price"],
                                   "compare_at_price": self.variants[v].get("compare_at_price"),
                                   "barcode": self.variants[v].get("barcode"),
                                   "image": next((self.media[m]["source"] for m in self.variants[v].get("media") or ()
                                                  if m in self.media), None),
                                   "metafields": self.metafields_of(self.variants[v])} for v in p["variants"]],
                     "media": [{"id": _gid("MediaImage", m), "source": self.media[m]["source"], "alt": self.media[m]["alt"]}
                               for m in p.get("media") or () if m in self.media],
                     "metafields": self.metafields_of(p)}
                    for n, p in sorted(self.products.items())]
        return Response.json({"products": rows})

    def catalogue_stats(self) -> dict:
        return {"products": len(self.products), "products_created": self.products_created,
                "products_updated": self.products_updated, "points_spent": self.points_spent,
                "price_lists": len(self.price_lists), "bulk_mutations": len(self.bulk_mutations),
                "media": len(self.media), "media_created": self.media_created}


def _storage_error(status: int, code: str, message: str) -> Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Response(status, body.encode(), {"Content-Type": "application/xml"})
