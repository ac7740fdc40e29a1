"""The part of Shopify's GraphQL Admin API the sandbox serves: Shopify's published schema of each API
version it serves (what a request is validated against), the smaller schema it executes, the rules
that differ by version, cursors and the cost model.

A request is checked against the PUBLISHED schema of the version it is served (`published_schema`,
Shopify's own SDL kept compressed in `shopify_admin/`), so a document Shopify would refuse on that
version is refused here too; what passes is executed against `SCHEMA`, the subset the sandbox
implements. Nested objects are dict values that are callables (graphql-core's default resolver calls
them with `info` and the field arguments), so every node is a plain dict.
"""
from __future__ import annotations

import base64
import contextvars
import json
import lzma
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from graphql import GraphQLError, GraphQLSchema, build_ast_schema, build_schema, parse, validate
from graphql.execution.values import get_variable_values
from graphql.language import DocumentNode, FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from graphql.utilities import value_from_ast_untyped

from .shopify_catalogue import CATALOGUE_SDL
from .shopify_payments import PAYMENTS_SDL

# --- API versions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRules:
    """What Shopify enforces at run time on one version, beyond what its schema says."""

    # 2026-04: inventorySetQuantities / inventoryAdjustQuantities / inventoryMoveQuantities need
    # `@idempotent(key: ...)` (optional from 2026-01).
    idempotency_required: bool
    # 2026-04: every entry of inventoryAdjustQuantities must give `changeFromQuantity`, null included.
    adjust_change_from_required: bool


# The stable versions the sandbox serves, oldest first, each with Shopify's published schema in
# shopify_admin/<version>.graphql.xz. A request for any other version (retired, never released, not
# yet released) is served as the oldest of them, as Shopify serves a retired version: the answer's
# X-Shopify-API-Version says which was used.
API_VERSIONS: dict[str, VersionRules] = {
    "2026-01": VersionRules(idempotency_required=False, adjust_change_from_required=False),
    "2026-04": VersionRules(idempotency_required=True, adjust_change_from_required=True),
}
IDEMPOTENT_MUTATIONS = ("inventorySetQuantities", "inventoryAdjustQuantities", "inventoryMoveQuantities")
SCHEMA_DIR = Path(__file__).with_name("shopify_admin")
_DESCRIPTION = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""')
_schema_locks = {version: threading.Lock() for version in API_VERSIONS}
_schemas: dict[str, GraphQLSchema] = {}


def served_version(requested: str, versions) -> str:
    """The version Shopify answers a request for `requested` with, among the stable `versions`."""
    versions = sorted(versions)
    if requested in versions:
        return requested
    if requested == "unstable":
        return versions[-1]
    return versions[0]  # retired or unknown: the oldest supported stable version


def published_schema(version: str) -> GraphQLSchema:
    """Shopify's published Admin schema of `version`, built once per process (a few seconds each).

    Descriptions are dropped before parsing: they take most of the file and most of the parse time
    and change nothing a request is validated against. Built assuming it valid: Shopify's own dump
    breaks a rule graphql-core checks (deprecated implementations of undeprecated interface fields)."""
    with _schema_locks[version]:
        schema = _schemas.get(version)
        if schema is None:
            text = lzma.decompress((SCHEMA_DIR / f"{version}.graphql.xz").read_bytes()).decode("utf-8")
            document = parse(_DESCRIPTION.sub("", text), no_location=True)
            schema = _schemas[version] = build_ast_schema(document, assume_valid=True, assume_valid_sdl=True)
        return schema


def warm_up(versions) -> threading.Thread:
    """Build the published schemas in the background, so the first request does not wait for all."""
    thread = threading.Thread(target=lambda: [published_schema(v) for v in versions], name="shopify-schemas",
                              daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=1024)
def parse_document(query: str) -> DocumentNode:
    return parse(query)


@lru_cache(maxsize=2048)
def _published_problems(version: str, query: str) -> tuple[dict, ...]:
    return tuple(problem.formatted for problem in validate(published_schema(version), parse_document(query)))


def published_problems(version: str, document_text: str, operation: OperationDefinitionNode | None,
                       variables: dict) -> list[dict]:
    """Why Shopify would refuse this request on `version`: the document's validation errors against
    the published schema, else the variables that do not coerce to their declared types."""
    problems = list(_published_problems(version, document_text))
    if problems or operation is None:
        return problems
    coerced = get_variable_values(published_schema(version), operation.variable_definitions or (), variables)
    if isinstance(coerced, list):
        return [error.formatted for error in coerced]
    return []


@lru_cache(maxsize=1024)
def implemented_problems(query: str) -> tuple[dict, ...]:
    """What of a (valid) document the sandbox does not implement: its errors against SCHEMA."""
    return tuple(problem.formatted for problem in validate(SCHEMA, parse_document(query)))


def idempotency_key(field: FieldNode, variables: dict) -> str | None:
    """The key of `@idempotent(key: ...)` on a mutation field, None without the directive."""
    for directive in field.directives or ():
        if directive.name.value == "idempotent":
            for argument in directive.arguments or ():
                if argument.name.value == "key":
                    value = value_from_ast_untyped(argument.value, variables)
                    return "" if value is None else str(value)
            return ""
    return None


SDL = """
directive @idempotent(key: String!) on FIELD

scalar DateTime
scalar Decimal
scalar URL

type Query {
  shop: Shop!
  orders(first: Int, after: String, last: Int, before: String, query: String, sortKey: OrderSortKeys, reverse: Boolean): OrderConnection!
  order(id: ID!): Order
  locations(first: Int, after: String, includeInactive: Boolean): LocationConnection!
  location(id: ID): Location
  products(first: Int, after: String, query: String): ProductConnection!
  product(id: ID!): Product
  productVariants(first: Int, after: String, query: String): ProductVariantConnection!
  productVariant(id: ID!): ProductVariant
  inventoryItem(id: ID!): InventoryItem
  inventoryLevel(id: ID!): InventoryLevel
  currentAppInstallation: AppInstallation!
  webhookSubscriptions(first: Int, after: String, last: Int, before: String, topics: [WebhookSubscriptionTopic!], format: WebhookSubscriptionFormat, uri: String, query: String, reverse: Boolean, sortKey: WebhookSubscriptionSortKeys): WebhookSubscriptionConnection!
  webhookSubscription(id: ID!): WebhookSubscription
  bulkOperation(id: ID!): BulkOperation
}

type Mutation {
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
  inventoryAdjustQuantities(input: InventoryAdjustQuantitiesInput!): InventoryAdjustQuantitiesPayload
  webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionCreatePayload
  webhookSubscriptionUpdate(id: ID!, webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionUpdatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
  bulkOperationRunQuery(query: String!, groupObjects: Boolean! = false): BulkOperationRunQueryPayload
}

type AccessScope { handle: String! description: String! }
type AppInstallation { id: ID! accessScopes: [AccessScope!]! }

type ApiVersion { handle: String! displayName: String! supported: Boolean! }
type UserError { field: [String!] message: String! }

enum WebhookSubscriptionFormat { JSON XML }
enum WebhookSubscriptionSortKeys { CREATED_AT ID }
enum WebhookSubscriptionTopic {
  TAX_SUMMARIES_CREATE APP_UNINSTALLED APP_SCOPES_UPDATE CARTS_CREATE CARTS_UPDATE CHANNELS_DELETE
  CHECKOUTS_CREATE CHECKOUTS_DELETE CHECKOUTS_UPDATE CUSTOMER_PAYMENT_METHODS_CREATE
  CUSTOMER_PAYMENT_METHODS_UPDATE CUSTOMER_PAYMENT_METHODS_REVOKE COLLECTION_LISTINGS_ADD
  COLLECTION_LISTINGS_REMOVE COLLECTION_LISTINGS_UPDATE COLLECTION_PUBLICATIONS_CREATE
  COLLECTION_PUBLICATIONS_DELETE COLLECTION_PUBLICATIONS_UPDATE COLLECTIONS_CREATE COLLECTIONS_DELETE
  COLLECTIONS_UPDATE CUSTOMER_GROUPS_CREATE CUSTOMER_GROUPS_DELETE CUSTOMER_GROUPS_UPDATE CUSTOMERS_CREATE
  CUSTOMERS_DELETE CUSTOMERS_DISABLE CUSTOMERS_ENABLE CUSTOMERS_UPDATE CUSTOMERS_PURCHASING_SUMMARY
  CUSTOMERS_MARKETING_CONSENT_UPDATE CUSTOMER_TAGS_ADDED CUSTOMER_TAGS_REMOVED
  CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE DISPUTES_CREATE DISPUTES_UPDATE DRAFT_ORDERS_CREATE
  DRAFT_ORDERS_DELETE DRAFT_ORDERS_UPDATE FULFILLMENT_EVENTS_CREATE FULFILLMENT_EVENTS_DELETE
  FULFILLMENTS_CREATE FULFILLMENTS_UPDATE ATTRIBUTED_SESSIONS_FIRST ATTRIBUTED_SESSIONS_LAST
  ORDER_TRANSACTIONS_CREATE ORDERS_CANCELLED ORDERS_CREATE ORDERS_DELETE ORDERS_EDITED ORDERS_FULFILLED
  ORDERS_PAID ORDERS_PARTIALLY_FULFILLED ORDERS_UPDATED ORDERS_LINK_REQUESTED FULFILLMENT_ORDERS_MOVED
  FULFILLMENT_ORDERS_HOLD_RELEASED FULFILLMENT_ORDERS_SCHEDULED_FULFILLMENT_ORDER_READY
  FULFILLMENT_HOLDS_RELEASED FULFILLMENT_ORDERS_ORDER_ROUTING_COMPLETE FULFILLMENT_ORDERS_CANCELLED
  FULFILLMENT_ORDERS_FULFILLMENT_SERVICE_FAILED_TO_COMPLETE FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_REJECTED
  FULFILLMENT_ORDERS_CANCELLATION_REQUEST_SUBMITTED FULFILLMENT_ORDERS_CANCELLATION_REQUEST_ACCEPTED
  FULFILLMENT_ORDERS_CANCELLATION_REQUEST_REJECTED FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_SUBMITTED
  FULFILLMENT_ORDERS_FULFILLMENT_REQUEST_ACCEPTED FULFILLMENT_HOLDS_ADDED
  FULFILLMENT_ORDERS_LINE_ITEMS_PREPARED_FOR_LOCAL_DELIVERY FULFILLMENT_ORDERS_PLACED_ON_HOLD
  FULFILLMENT_ORDERS_MERGED FULFILLMENT_ORDERS_SPLIT FULFILLMENT_ORDERS_PROGRESS_REPORTED
  FULFILLMENT_ORDERS_MANUALLY_REPORTED_PROGRESS_STOPPED PRODUCT_LISTINGS_ADD PRODUCT_LISTINGS_REMOVE
  PRODUCT_LISTINGS_UPDATE SCHEDULED_PRODUCT_LISTINGS_ADD SCHEDULED_PRODUCT_LISTINGS_UPDATE
  SCHEDULED_PRODUCT_LISTINGS_REMOVE PRODUCT_PUBLICATIONS_CREATE PRODUCT_PUBLICATIONS_DELETE
  PRODUCT_PUBLICATIONS_UPDATE PRODUCTS_CREATE PRODUCTS_DELETE PRODUCTS_UPDATE REFUNDS_CREATE SEGMENTS_CREATE
  SEGMENTS_DELETE SEGMENTS_UPDATE SHIPPING_ADDRESSES_CREATE SHIPPING_ADDRESSES_UPDATE SHOP_UPDATE
  TAX_PARTNERS_UPDATE TAX_SERVICES_CREATE TAX_SERVICES_UPDATE THEMES_CREATE THEMES_DELETE THEMES_PUBLISH
  THEMES_UPDATE VARIANTS_IN_STOCK VARIANTS_OUT_OF_STOCK INVENTORY_LEVELS_CONNECT INVENTORY_LEVELS_UPDATE
  INVENTORY_LEVELS_DISCONNECT INVENTORY_ITEMS_CREATE INVENTORY_ITEMS_UPDATE INVENTORY_ITEMS_DELETE
  LOCATIONS_ACTIVATE LOCATIONS_DEACTIVATE LOCATIONS_CREATE LOCATIONS_UPDATE LOCATIONS_DELETE
  TENDER_TRANSACTIONS_CREATE APP_PURCHASES_ONE_TIME_UPDATE APP_SUBSCRIPTIONS_APPROACHING_CAPPED_AMOUNT
  APP_SUBSCRIPTIONS_UPDATE LOCALES_CREATE LOCALES_UPDATE LOCALES_DESTROY DOMAINS_CREATE DOMAINS_UPDATE
  DOMAINS_DESTROY SUBSCRIPTION_CONTRACTS_CREATE SUBSCRIPTION_CONTRACTS_UPDATE
  SUBSCRIPTION_BILLING_CYCLE_EDITS_CREATE SUBSCRIPTION_BILLING_CYCLE_EDITS_UPDATE
  SUBSCRIPTION_BILLING_CYCLE_EDITS_DELETE PROFILES_CREATE PROFILES_UPDATE PROFILES_DELETE
  SUBSCRIPTION_BILLING_ATTEMPTS_SUCCESS SUBSCRIPTION_BILLING_ATTEMPTS_FAILURE
  SUBSCRIPTION_BILLING_ATTEMPTS_CHALLENGED RETURNS_CANCEL RETURNS_CLOSE RETURNS_REOPEN RETURNS_REQUEST
  RETURNS_APPROVE RETURNS_UPDATE RETURNS_PROCESS RETURNS_DECLINE REVERSE_DELIVERIES_ATTACH_DELIVERABLE
  REVERSE_FULFILLMENT_ORDERS_DISPOSE PAYMENT_TERMS_CREATE PAYMENT_TERMS_DELETE PAYMENT_TERMS_UPDATE
  PAYMENT_SCHEDULES_DUE SELLING_PLAN_GROUPS_CREATE SELLING_PLAN_GROUPS_UPDATE SELLING_PLAN_GROUPS_DELETE
  BULK_OPERATIONS_FINISH PRODUCT_FEEDS_CREATE PRODUCT_FEEDS_UPDATE PRODUCT_FEEDS_INCREMENTAL_SYNC
  PRODUCT_FEEDS_FULL_SYNC PRODUCT_FEEDS_FULL_SYNC_FINISH MARKETS_CREATE MARKETS_UPDATE MARKETS_DELETE
  ORDERS_RISK_ASSESSMENT_CHANGED ORDERS_SHOPIFY_PROTECT_ELIGIBILITY_CHANGED FINANCE_KYC_INFORMATION_UPDATE
  FULFILLMENT_ORDERS_RESCHEDULED PUBLICATIONS_DELETE AUDIT_EVENTS_ADMIN_API_ACTIVITY
  FULFILLMENT_ORDERS_LINE_ITEMS_PREPARED_FOR_PICKUP COMPANIES_CREATE COMPANIES_UPDATE COMPANIES_DELETE
  COMPANY_LOCATIONS_CREATE COMPANY_LOCATIONS_UPDATE COMPANY_LOCATIONS_DELETE COMPANY_CONTACTS_CREATE
  COMPANY_CONTACTS_UPDATE COMPANY_CONTACTS_DELETE CUSTOMERS_MERGE INVENTORY_TRANSFERS_ADD_ITEMS
  INVENTORY_TRANSFERS_UPDATE_ITEM_QUANTITIES INVENTORY_TRANSFERS_REMOVE_ITEMS INVENTORY_TRANSFERS_READY_TO_SHIP
  INVENTORY_TRANSFERS_CANCEL INVENTORY_TRANSFERS_COMPLETE INVENTORY_SHIPMENTS_DELETE INVENTORY_SHIPMENTS_CREATE
  INVENTORY_SHIPMENTS_MARK_IN_TRANSIT INVENTORY_SHIPMENTS_UPDATE_TRACKING INVENTORY_SHIPMENTS_ADD_ITEMS
  INVENTORY_SHIPMENTS_UPDATE_ITEM_QUANTITIES INVENTORY_SHIPMENTS_REMOVE_ITEMS INVENTORY_SHIPMENTS_RECEIVE_ITEMS
  CUSTOMER_ACCOUNT_SETTINGS_UPDATE CUSTOMER_JOINED_SEGMENT CUSTOMER_LEFT_SEGMENT COMPANY_CONTACT_ROLES_ASSIGN
  COMPANY_CONTACT_ROLES_REVOKE SUBSCRIPTION_CONTRACTS_ACTIVATE SUBSCRIPTION_CONTRACTS_PAUSE
  SUBSCRIPTION_CONTRACTS_CANCEL SUBSCRIPTION_CONTRACTS_FAIL SUBSCRIPTION_CONTRACTS_EXPIRE
  SUBSCRIPTION_BILLING_CYCLES_SKIP SUBSCRIPTION_BILLING_CYCLES_UNSKIP METAOBJECTS_CREATE METAOBJECTS_UPDATE
  METAOBJECTS_DELETE FINANCE_APP_STAFF_MEMBER_GRANT FINANCE_APP_STAFF_MEMBER_REVOKE
  FINANCE_APP_STAFF_MEMBER_DELETE FINANCE_APP_STAFF_MEMBER_UPDATE DISCOUNTS_CREATE DISCOUNTS_UPDATE
  DISCOUNTS_DELETE DISCOUNTS_REDEEMCODE_ADDED DISCOUNTS_REDEEMCODE_REMOVED METAFIELD_DEFINITIONS_CREATE
  METAFIELD_DEFINITIONS_UPDATE METAFIELD_DEFINITIONS_DELETE DELIVERY_PROMISE_SETTINGS_UPDATE
  MARKETS_BACKUP_REGION_UPDATE CHECKOUT_AND_ACCOUNTS_CONFIGURATIONS_UPDATE
}
type WebhookSubscription {
  id: ID!
  legacyResourceId: String!
  topic: WebhookSubscriptionTopic!
  uri: String!
  callbackUrl: URL!
  format: WebhookSubscriptionFormat!
  apiVersion: ApiVersion!
  createdAt: DateTime!
  updatedAt: DateTime!
  filter: String
  includeFields: [String!]!
  name: String
}
type WebhookSubscriptionEdge { cursor: String! node: WebhookSubscription! }
type WebhookSubscriptionConnection { edges: [WebhookSubscriptionEdge!]! nodes: [WebhookSubscription!]! pageInfo: PageInfo! }
input WebhookSubscriptionInput {
  filter: String
  format: WebhookSubscriptionFormat
  includeFields: [String!]
  metafieldNamespaces: [String!]
  name: String
  uri: String
}
type WebhookSubscriptionCreatePayload { userErrors: [UserError!]! webhookSubscription: WebhookSubscription }
type WebhookSubscriptionUpdatePayload { userErrors: [UserError!]! webhookSubscription: WebhookSubscription }
type WebhookSubscriptionDeletePayload { deletedWebhookSubscriptionId: ID userErrors: [UserError!]! }

type Shop { id: ID! name: String! currencyCode: String! myshopifyDomain: String! }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }

enum OrderSortKeys { CREATED_AT UPDATED_AT PROCESSED_AT ID ORDER_NUMBER TOTAL_PRICE }
enum OrderDisplayFinancialStatus { AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED }

type MoneyV2 { amount: Decimal! currencyCode: String! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }

type Order {
  id: ID!
  legacyResourceId: String!
  name: String!
  email: String
  phone: String
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  displayFinancialStatus: OrderDisplayFinancialStatus
  test: Boolean!
  taxesIncluded: Boolean!
  sourceName: String
  currencyCode: String!
  presentmentCurrencyCode: String!
  totalPriceSet: MoneyBag!
  currentTotalPriceSet: MoneyBag!
  totalTaxSet: MoneyBag
  totalDiscountsSet: MoneyBag
  totalTipReceivedSet: MoneyBag!
  originalTotalDutiesSet: MoneyBag
  currentTotalDutiesSet: MoneyBag
  taxLines: [TaxLine!]!
  retailLocation: Location
  customer: Customer
  shippingAddress: MailingAddress
  billingAddress: MailingAddress
  lineItems(first: Int, after: String): LineItemConnection!
  shippingLines(first: Int, after: String): ShippingLineConnection!
  refunds(first: Int): [Refund!]!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }
enum OrderCancelReason { CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }

type TaxLine { title: String! rate: Float priceSet: MoneyBag! }
type DiscountAllocation { allocatedAmountSet: MoneyBag! }
type Duty { id: ID! harmonizedSystemCode: String countryCodeOfOrigin: String price: MoneyBag! taxLines: [TaxLine!]! }
type MailingAddress { name: String phone: String countryCodeV2: String }
type CustomerEmailAddress { emailAddress: String! }
type CustomerPhoneNumber { phoneNumber: String! }
type Customer {
  id: ID! firstName: String lastName: String defaultEmailAddress: CustomerEmailAddress
  defaultPhoneNumber: CustomerPhoneNumber defaultAddress: MailingAddress
}

type LineItem {
  id: ID! sku: String title: String! name: String! quantity: Int! currentQuantity: Int! isGiftCard: Boolean!
  requiresShipping: Boolean! variant: ProductVariant product: Product originalUnitPriceSet: MoneyBag!
  discountAllocations: [DiscountAllocation!]! taxLines: [TaxLine!]! duties: [Duty!]!
}
type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }

type ShippingLine {
  id: ID title: String! code: String originalPriceSet: MoneyBag! discountAllocations: [DiscountAllocation!]!
  taxLines: [TaxLine!]!
}
type ShippingLineEdge { cursor: String! node: ShippingLine! }
type ShippingLineConnection { edges: [ShippingLineEdge!]! nodes: [ShippingLine!]! pageInfo: PageInfo! }

enum OrderTransactionKind { AUTHORIZATION CAPTURE CHANGE EMV_AUTHORIZATION REFUND SALE SUGGESTED_REFUND VOID }
enum OrderTransactionStatus { AWAITING_RESPONSE ERROR FAILURE PENDING SUCCESS UNKNOWN }
type OrderTransaction { kind: OrderTransactionKind! status: OrderTransactionStatus! amountSet: MoneyBag! }
type OrderTransactionConnection { nodes: [OrderTransaction!]! pageInfo: PageInfo! }
type RefundLineItem { quantity: Int! lineItem: LineItem! }
type RefundLineItemConnection { nodes: [RefundLineItem!]! pageInfo: PageInfo! }
type Refund {
  id: ID!
  refundLineItems(first: Int, after: String): RefundLineItemConnection!
  transactions(first: Int, after: String): OrderTransactionConnection!
}

enum BulkOperationStatus { CANCELED CANCELING COMPLETED CREATED EXPIRED FAILED RUNNING }
enum BulkOperationErrorCode { ACCESS_DENIED INTERNAL_SERVER_ERROR TIMEOUT }
enum BulkOperationType { MUTATION QUERY }
enum BulkOperationUserErrorCode { INVALID LIMIT_REACHED OPERATION_IN_PROGRESS }
type BulkOperation {
  id: ID! status: BulkOperationStatus! type: BulkOperationType! errorCode: BulkOperationErrorCode
  createdAt: DateTime! completedAt: DateTime objectCount: String! rootObjectCount: String! fileSize: String
  url: URL partialDataUrl: URL query: String!
}
type BulkOperationUserError { field: [String!] message: String! code: BulkOperationUserErrorCode }
type BulkOperationRunQueryPayload { bulkOperation: BulkOperation userErrors: [BulkOperationUserError!]! }

type Location { id: ID! legacyResourceId: String! name: String! isActive: Boolean! }
type LocationEdge { cursor: String! node: Location! }
type LocationConnection { edges: [LocationEdge!]! nodes: [Location!]! pageInfo: PageInfo! }

type Product {
  id: ID!
  legacyResourceId: String!
  title: String!
  status: String!
  variants(first: Int, after: String): ProductVariantConnection!
}
type ProductEdge { cursor: String! node: Product! }
type ProductConnection { edges: [ProductEdge!]! nodes: [Product!]! pageInfo: PageInfo! }

type ProductVariant {
  id: ID!
  legacyResourceId: String!
  sku: String
  title: String!
  price: Decimal!
  compareAtPrice: Decimal
  product: Product!
  inventoryItem: InventoryItem!
}
type ProductVariantEdge { cursor: String! node: ProductVariant! }
type ProductVariantConnection { edges: [ProductVariantEdge!]! nodes: [ProductVariant!]! pageInfo: PageInfo! }

type InventoryItem {
  id: ID!
  legacyResourceId: String!
  sku: String
  tracked: Boolean!
  variant: ProductVariant!
  inventoryLevels(first: Int, after: String): InventoryLevelConnection!
  inventoryLevel(locationId: ID!): InventoryLevel
}

type InventoryLevel {
  id: ID!
  location: Location!
  item: InventoryItem!
  updatedAt: DateTime
  quantities(names: [String!]!): [InventoryQuantity!]!
}
type InventoryLevelEdge { cursor: String! node: InventoryLevel! }
type InventoryLevelConnection { edges: [InventoryLevelEdge!]! nodes: [InventoryLevel!]! pageInfo: PageInfo! }

type InventoryQuantity { id: ID! name: String! quantity: Int! updatedAt: DateTime }

input InventoryQuantityInput {
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
  changeFromQuantity: Int
}
input InventorySetQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  quantities: [InventoryQuantityInput!]!
}
input InventoryChangeInput {
  delta: Int!
  inventoryItemId: ID!
  locationId: ID!
  ledgerDocumentUri: String
  changeFromQuantity: Int
}
input InventoryAdjustQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  changes: [InventoryChangeInput!]!
}

type InventoryChange {
  name: String!
  delta: Int!
  quantityAfterChange: Int
  ledgerDocumentUri: String
  item: InventoryItem
  location: Location
}
type InventoryAdjustmentGroup {
  id: ID!
  createdAt: DateTime!
  reason: String!
  referenceDocumentUri: String
  changes(inventoryItemIds: [ID!], locationIds: [ID!], quantityNames: [String!]): [InventoryChange!]!
}

enum InventorySetQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE COMPARE_QUANTITY_REQUIRED COMPARE_QUANTITY_STALE INVALID_INVENTORY_ITEM
  INVALID_LOCATION INVALID_NAME INVALID_QUANTITY_NEGATIVE INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW
  INVALID_REASON INVALID_REFERENCE_DOCUMENT ITEM_NOT_STOCKED_AT_LOCATION NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
  NON_MUTABLE_INVENTORY_ITEM IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH
}
type InventorySetQuantitiesUserError { code: InventorySetQuantitiesUserErrorCode field: [String!] message: String! }
type InventorySetQuantitiesPayload { inventoryAdjustmentGroup: InventoryAdjustmentGroup userErrors: [InventorySetQuantitiesUserError!]! }

enum InventoryAdjustQuantitiesUserErrorCode {
  ADJUST_QUANTITIES_FAILED CHANGE_FROM_QUANTITY_STALE INTERNAL_LEDGER_DOCUMENT INVALID_AVAILABLE_DOCUMENT
  INVALID_INVENTORY_ITEM INVALID_LEDGER_DOCUMENT INVALID_LOCATION INVALID_QUANTITY_DOCUMENT INVALID_QUANTITY_NAME
  INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW INVALID_REASON INVALID_REFERENCE_DOCUMENT
  ITEM_NOT_STOCKED_AT_LOCATION MAX_ONE_LEDGER_DOCUMENT NON_MUTABLE_INVENTORY_ITEM SERVICE_UNAVAILABLE
  IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH
}
type InventoryAdjustQuantitiesUserError { code: InventoryAdjustQuantitiesUserErrorCode field: [String!] message: String! }
type InventoryAdjustQuantitiesPayload { inventoryAdjustmentGroup: InventoryAdjustmentGroup userErrors: [InventoryAdjustQuantitiesUserError!]! }
"""

# Fulfilment (shopify_fulfilment.py): an order's fulfillment orders per location, its fulfilments and
# fulfillmentCreate, with the published schema's names and types.
FULFILMENT_SDL = """
extend type Order {
  fulfillmentOrders(first: Int, after: String, last: Int, before: String, displayable: Boolean, query: String, reverse: Boolean): FulfillmentOrderConnection!
  fulfillments(first: Int, query: String): [Fulfillment!]!
}
extend type Mutation {
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
}
enum FulfillmentOrderStatus { OPEN IN_PROGRESS CANCELLED INCOMPLETE CLOSED SCHEDULED ON_HOLD }
enum FulfillmentStatus { PENDING OPEN SUCCESS CANCELLED ERROR FAILURE }
enum FulfillmentDisplayStatus {
  ATTEMPTED_DELIVERY CANCELED CONFIRMED DELAYED DELIVERED FAILURE FULFILLED CARRIER_PICKED_UP IN_TRANSIT
  LABEL_PRINTED LABEL_PURCHASED LABEL_VOIDED MARKED_AS_FULFILLED NOT_DELIVERED OUT_FOR_DELIVERY READY_FOR_PICKUP
  PICKED_UP SUBMITTED
}
type FulfillmentOrderAssignedLocation { name: String! location: Location }
type FulfillmentOrderLineItem { id: ID! remainingQuantity: Int! totalQuantity: Int! lineItem: LineItem! }
type FulfillmentOrderLineItemEdge { cursor: String! node: FulfillmentOrderLineItem! }
type FulfillmentOrderLineItemConnection { edges: [FulfillmentOrderLineItemEdge!]! nodes: [FulfillmentOrderLineItem!]! pageInfo: PageInfo! }
type FulfillmentOrder {
  id: ID!
  orderId: ID!
  status: FulfillmentOrderStatus!
  assignedLocation: FulfillmentOrderAssignedLocation!
  lineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean): FulfillmentOrderLineItemConnection!
  fulfillments(first: Int, after: String, last: Int, before: String, reverse: Boolean): FulfillmentConnection!
}
type FulfillmentOrderEdge { cursor: String! node: FulfillmentOrder! }
type FulfillmentOrderConnection { edges: [FulfillmentOrderEdge!]! nodes: [FulfillmentOrder!]! pageInfo: PageInfo! }
type FulfillmentTrackingInfo { company: String number: String url: URL }
type FulfillmentLineItem { id: ID! quantity: Int lineItem: LineItem! }
type FulfillmentLineItemEdge { cursor: String! node: FulfillmentLineItem! }
type FulfillmentLineItemConnection { edges: [FulfillmentLineItemEdge!]! nodes: [FulfillmentLineItem!]! pageInfo: PageInfo! }
type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  displayStatus: FulfillmentDisplayStatus
  createdAt: DateTime!
  totalQuantity: Int!
  location: Location
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean): FulfillmentLineItemConnection!
}
type FulfillmentEdge { cursor: String! node: Fulfillment! }
type FulfillmentConnection { edges: [FulfillmentEdge!]! nodes: [Fulfillment!]! pageInfo: PageInfo! }
input FulfillmentTrackingInput { company: String number: String numbers: [String!] url: URL urls: [URL!] }
input FulfillmentOrderLineItemInput { id: ID! quantity: Int! }
input FulfillmentOrderLineItemsInput { fulfillmentOrderId: ID! fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!] }
input FulfillmentInput {
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
  notifyCustomer: Boolean = false
  trackingInfo: FulfillmentTrackingInput
}
type FulfillmentCreatePayload { fulfillment: Fulfillment userErrors: [UserError!]! }
"""

SCHEMA = build_schema(SDL + FULFILMENT_SDL + PAYMENTS_SDL + CATALOGUE_SDL)

MAX_PAGE_SIZE = 250  # Shopify's maximum for `first`/`last` on a connection
MUTATION_COST = 10
CONNECTION_COST = 2


# --- pagination ---------------------------------------------------------------------------------


def cursor_for(sort_key: tuple) -> str:
    """Shopify's cursor: the row's id and the value it is sorted by, so paging resumes by position in
    the sort, not by the row (which may have moved since)."""
    last_id, last_value = sort_key[-1], sort_key[0]
    return base64.b64encode(json.dumps({"last_id": last_id, "last_value": last_value}).encode()).decode()


def _sort_key_from_cursor(cursor: str, width: int) -> tuple:
    try:
        decoded = json.loads(base64.b64decode(cursor.encode(), validate=True).decode())
        key = (decoded["last_value"], decoded["last_id"]) if width > 1 else (decoded["last_id"],)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc
    return key


# True while a bulk query operation runs: its connections are read whole, without `first`.
BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("shopify_bulk", default=False)


def connection(items: list, *, first, after, key, node, last=None, before=None, value=None,
               reverse: bool = False) -> dict:
    """A Relay connection over `items` sorted by (`value`, `key`) (descending when `reverse`).

    `after`/`before` name a position in that sort (the sort value and id a cursor carries), not a row:
    a row that changed between two pages and so moved past the cursor is returned again on a later
    page, never skipped, as Shopify does."""
    if first is None and last is None:
        if not BULK.get():
            raise GraphQLError("you must provide one of first or last")
        first = len(items)  # a bulk operation reads every node of a connection; `first` is not given
    size = first if first is not None else last
    if size < 0 or (size > MAX_PAGE_SIZE and not BULK.get()):
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}, got {size}")

    def sort_key(item) -> tuple:
        return (value(item), key(item)) if value else (key(item),)

    keys = [sort_key(item) for item in items]
    width = len(keys[0]) if keys else (2 if value else 1)

    def beyond(row: tuple, mark: tuple) -> bool:  # row comes after mark in the sort
        try:
            return row < mark if reverse else row > mark
        except TypeError as exc:
            raise GraphQLError(f"Invalid cursor for current pagination sort: {mark!r}") from exc

    start, end = 0, len(items)
    if after:
        mark = _sort_key_from_cursor(after, width)
        start = next((i for i, row in enumerate(keys) if beyond(row, mark)), len(items))
    if before:
        mark = _sort_key_from_cursor(before, width)
        end = next((i for i, row in enumerate(keys) if row == mark or beyond(row, mark)), len(items))
    window = list(range(start, max(start, end)))
    chosen = window[:size] if first is not None else window[-size:] if size else []
    edges = [{"cursor": cursor_for(keys[i]), "node": node(items[i])} for i in chosen]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": bool(chosen) and chosen[-1] < end - 1,
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# --- search syntax (the `query:` argument) -----------------------------------------------------

_TERM = re.compile(r"""(?P<field>\w+):(?P<op>>=|<=|>|<)?(?:'(?P<q1>[^']*)'|"(?P<q2>[^"]*)"|(?P<bare>[^\s()]+))""")


def search_terms(query: str | None) -> list[list[tuple[str, str, str]]]:
    """Shopify search syntax, the part the sandbox understands: `field:value` terms joined by
    spaces / AND (all must match) and OR (any group). Returns OR-groups of AND-terms."""
    if not query:
        return []
    groups = []
    for part in re.split(r"\s+OR\s+", query.strip()):
        terms = []
        for match in _TERM.finditer(part):
            value = next(v for v in (match["q1"], match["q2"], match["bare"]) if v is not None)
            terms.append((match["field"].lower(), match["op"] or "=", value))
        if terms:
            groups.append(terms)
    return groups


def compare(actual, op: str, wanted) -> bool:
    if actual is None:
        return False
    return {
        "=": actual == wanted,
        ">": actual > wanted,
        ">=": actual >= wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
    }[op]


# --- cost --------------------------------------------------------------------------------------

_TRANSPARENT = {"edges", "node", "nodes", "pageInfo"}
_PAGE_INFO_KEYS = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}


def _arg(field: FieldNode, name: str, variables: dict):
    for argument in field.arguments or ():
        if argument.name.value == name:
            return value_from_ast_untyped(argument.value, variables)
    return None


def _selection_cost(selection_set, variables: dict, fragments: dict) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, InlineFragmentNode):
            total += _selection_cost(selection.selection_set, variables, fragments)
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            total += _selection_cost(fragment.selection_set if fragment else None, variables, fragments)
            continue
        if selection.selection_set is None:
            continue  # scalars are free, as on Shopify
        children = _selection_cost(selection.selection_set, variables, fragments)
        size = _arg(selection, "first", variables) or _arg(selection, "last", variables)
        if selection.name.value in _TRANSPARENT:
            total += children
        elif isinstance(size, int):
            total += CONNECTION_COST + size * (1 + children)  # each node is an object
        else:
            total += 1 + children
    return total


def requested_cost(document, operation_name: str | None, variables: dict) -> int:
    """The worst-case cost before running: 1 per object, connections sized by `first`, +10 per mutation."""
    fragments = {d.name.value: d for d in document.definitions if not isinstance(d, OperationDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [d for d in operations if d.name and d.name.value == operation_name]
    if not operations:
        return 1
    operation = operations[0]
    cost = _selection_cost(operation.selection_set, variables, fragments)
    if operation.operation.value == "mutation":
        cost += MUTATION_COST * len(operation.selection_set.selections)
    return max(cost, 1)


def actual_cost(data, is_mutation: bool, mutation_fields: int) -> int:
    """What the answer really held: 1 per object returned (+10 per mutation)."""

    def count(value) -> int:
        if isinstance(value, dict):
            keys = set(value)
            if "nodes" in keys or "edges" in keys:
                own = CONNECTION_COST
            elif keys <= {"cursor", "node", "pageInfo"} or keys <= _PAGE_INFO_KEYS:
                own = 0
            else:
                own = 1
            return own + sum(count(v) for v in value.values())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    total = sum(count(v) for v in (data or {}).values())
    if is_mutation:
        total += MUTATION_COST * mutation_fields
    return max(total, 1)
