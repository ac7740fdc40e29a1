"""The item master's shapes, shared by the ERP connectors (which read them), the catalogue flow (which
gates and schedules them) and the storefront connectors (which publish them).

The ERP (or a PIM) is the single source of items and prices. A *product* groups variants (one per
SKU) under a stable key the ERP never changes, so a SKU renamed in the ERP is a new code on the same
variant (a mapping change with history), never a new product. Money is Decimal, in the currency's
own precision unless a price list states more (commercetools highPrecision)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

# ERP capability: the item master, changed since a cursor (see ItemMaster below).
ITEM_MASTER = "item_master"
# Storefront capabilities.
PUBLISH_PRODUCTS = "publish_products"  # create / update / unpublish products, one request per product or batch
BULK_PUBLISH = "bulk_publish"  # the vendor's bulk path for large catalogues (Shopify bulk mutations)


@dataclass(frozen=True)
class ItemPrice:
    """One price of a price list. Scope: currency, and optionally country, customer group, channel;
    min_quantity > 1 is a tier; valid_from / valid_until bound it in time (None = open)."""

    currency: str
    amount: Decimal
    type: str = "list"  # "list" | "compare_at"
    country: str = ""
    customer_group: str = ""
    channel: str = ""
    min_quantity: int = 1
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    price_list: str = ""  # the ERP's price list code, for screens and Shopify market price lists

    @property
    def scope(self) -> tuple:
        """What makes two prices the same price slot (the amount is what may differ)."""
        return (self.currency, self.type, self.country, self.customer_group, self.channel, self.min_quantity,
                self.valid_from, self.valid_until)


@dataclass(frozen=True)
class ItemComponent:
    item_code: str
    quantity: int = 1


@dataclass(frozen=True)
class MasterItem:
    """One ERP item (one SKU) as its item master states it. Fields the ERP leaves empty are "" / None;
    the gate decides which of them a storefront needs before the item may go live."""

    id: str  # the ERP's stable id of the item (survives a change of code)
    code: str  # the item code = the SKU the storefronts sell it under, unless a SKU mapping says otherwise
    product_key: str  # the ERP's product group; variants of one product share it ("" = a product of its own)
    name: str
    description: str = ""
    status: str = "active"  # "active" | "retired"
    product_type: str = ""
    attributes: dict = field(default_factory=dict)  # name -> str | int | bool | Decimal | list[str]
    tax_code: str = ""
    unit_cost: Decimal | None = None
    lead_time_days: int | None = None
    supplier: str = ""
    depot: str = ""  # default depot it ships from
    barcodes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # image URLs
    components: tuple[ItemComponent, ...] = ()  # a kit's components
    prices: tuple[ItemPrice, ...] = ()
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return self.product_key or self.code


@dataclass(frozen=True)
class ItemPage:
    items: list[MasterItem]
    cursor: str  # pass back to continue; stable across restarts
    has_more: bool


class ItemMaster(Protocol):
    """ERP capability ITEM_MASTER."""

    def items_changed_since(self, cursor: str = "", *, limit: int = 200) -> ItemPage:
        """Items created, changed or retired after `cursor`, oldest change first, with their prices."""
        ...


# --- what a storefront publishes ----------------------------------------------------------------


@dataclass(frozen=True)
class ProductVariant:
    sku: str
    item_id: str  # the ERP item id (stable across SKU renames)
    attributes: dict = field(default_factory=dict)
    barcodes: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    prices: tuple[ItemPrice, ...] = ()
    # What Ledgerline recorded of this variant on this storefront: its id there, and the images it was
    # last sent (None: not known). A product whose variants all carry both is written without asking
    # the storefront first (no adoption lookup: it is ours, and the catalogue drift check finds a SKU
    # someone also put on another product).
    storefront_id: str = ""
    images_pushed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Product:
    """A product as the catalogue flow hands it to a storefront: built from the MasterItems sharing a
    product key, after gating and the SKU mapping. `key` is what the storefront keeps to find it again
    (commercetools product key; Shopify product handle/customId), so publishing twice updates."""

    key: str
    name: str
    description: str = ""
    product_type: str = ""
    tax_category: str = ""
    variants: tuple[ProductVariant, ...] = ()
    published: bool = True  # False = retired: unpublished (status draft/archived), never deleted
    # The product's id in the storefront once Ledgerline has published or adopted it: the publisher
    # addresses that product by id (its key or handle may be the storefront's own). Empty: not known
    # yet, so the publisher first looks for the variants' SKUs in the storefront (adoption, below).
    storefront_id: str = ""


@dataclass(frozen=True)
class PublishResult:
    key: str
    ok: bool
    storefront_id: str = ""  # the product's id in the storefront
    variant_ids: dict = field(default_factory=dict)  # sku -> storefront variant id
    error: str = ""
    retryable: bool = False  # True: try again later (429, 5xx, 409 version race after retries)
    created: bool = False  # True when this call created the product (False: it was there and was updated)
    adopted: bool = False  # True when an existing storefront product holding these SKUs was taken over
    # True when the storefront already sells these SKUs grouped otherwise (spread over several products,
    # or beside SKUs this product does not have): nothing was written, `error` names the storefront
    # products and their SKUs, and a person decides (not retryable).
    conflict: bool = False


class PublishProducts(Protocol):
    """Storefront capability PUBLISH_PRODUCTS: create-or-update by key, never a second product.

    Adoption: a product with no `storefront_id` may already be on the storefront, made by hand or by an
    earlier integration, under another key or handle. Before creating it the publisher looks its SKUs
    up in the storefront: none found, it creates the product; all found on one storefront product whose
    SKUs are all this product's, it updates that product (PublishResult.adopted, storefront_id = its
    id); otherwise it writes nothing and answers `conflict` (a second product would be refused for its
    SKUs, or would sell them twice)."""

    def publish_products(self, products: list[Product]) -> list[PublishResult]: ...

    def set_variant_prices(self, sku: str, prices: list[ItemPrice]) -> None:
        """Put one variant's prices back to the ERP's (the drift screen's "restore ERP price")."""
        ...


@dataclass(frozen=True)
class BulkStatus:
    handle: str  # the vendor's job id (Shopify BulkOperation gid)
    state: str  # "running" | "completed" | "failed"
    done_count: int = 0  # objects processed so far (progress)
    error: str = ""


class BulkPublish(Protocol):
    """Storefront capability BULK_PUBLISH: the vendor's bulk path. The catalogue flow stores the handle
    before it waits, so after a crash it resumes by asking the same job, never by starting another."""

    def bulk_publish_start(self, products: list[Product]) -> str:
        """Stage the products (e.g. a JSONL upload) and start one bulk job; returns its handle."""
        ...

    def bulk_publish_status(self, handle: str) -> BulkStatus: ...

    def bulk_publish_results(self, handle: str) -> list[PublishResult]:
        """One result per product of a completed job, matched by key."""
        ...
