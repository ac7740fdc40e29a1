"""Per-connection order settings: what releases an order, how guests and test orders are posted,
which ERP items carry shipping, duties, tips, gift cards and discounts.

A connection's `settings` JSON overrides the defaults below, which come from the environment
(settings.ORDERS, SHOPIFY_POST_ON_FINANCIAL_STATUSES, CT_POST_ON_PAYMENT_STATES).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

GUEST_ACCOUNT = "guest_account"  # one named ERP guest / cash-sale account per connection and currency
STOREFRONT_CUSTOMER = "storefront_customer"  # an ERP account keyed by storefront customer id or phone
GUEST_POLICIES = (GUEST_ACCOUNT, STOREFRONT_CUSTOMER)

# Payment states that say the money was taken, whatever else is configured: an order first seen
# refunded was paid first, and its sale posts (the refund travels separately).
ALWAYS_RELEASED = {
    "shopify": {"paid", "partially_refunded", "refunded"},
    "commercetools": {"paid", "creditowed"},
}
# Payment states that end the order before it is paid (Shopify: the authorisation was voided).
CANCELLING_STATES = {"shopify": {"voided"}, "commercetools": set()}


@dataclass(frozen=True)
class OrderSettings:
    platform: str
    release_states: frozenset[str]
    post_test_orders: bool = False
    guest_policy: str = GUEST_ACCOUNT
    # currency -> ERP account code of an existing guest / cash-sale account ("*" for any currency);
    # without one the guest account is found or opened in the ERP under the connection's reference.
    guest_accounts: dict = field(default_factory=dict)
    post_currency: str = "shop"  # Shopify: "shop" (default) or "presentment"
    custom_item: str = "CUSTOM"
    shipping_item: str = "SHIPPING"
    discount_item: str = "DISCOUNT"
    duty_item: str = "DUTIES"
    tip_item: str = "TIPS"
    gift_card_item: str = "GIFT-CARD-LIABILITY"
    rounding: str = "ROUND_HALF_EVEN"
    cancel_in_erp: bool = True  # a storefront cancellation after posting cancels the ERP order

    def releases(self, payment_state: str) -> bool:
        state = (payment_state or "").lower()
        return state in self.release_states or state in ALWAYS_RELEASED.get(self.platform, set())

    def cancels(self, payment_state: str) -> bool:
        return (payment_state or "").lower() in CANCELLING_STATES.get(self.platform, set())


def _defaults(platform: str) -> dict:
    orders = settings.ORDERS
    if platform == "shopify":
        states = settings.SHOPIFY_POST_ON_FINANCIAL_STATUSES
    else:
        states = settings.COMMERCETOOLS["post_on_payment_states"]
    return {
        "release_states": states,
        "post_test_orders": orders.get("post_test_orders", False),
        "guest_policy": orders.get("guest_policy", GUEST_ACCOUNT),
        "guest_accounts": orders.get("guest_accounts", {}),
        "post_currency": orders.get("post_currency", "shop"),
        "custom_item": orders["default_custom_item"],
        "shipping_item": orders["shipping_item"],
        "discount_item": orders["discount_item"],
        "duty_item": orders.get("duty_item", "DUTIES"),
        "tip_item": orders.get("tip_item", "TIPS"),
        "gift_card_item": orders.get("gift_card_item", "GIFT-CARD-LIABILITY"),
        "rounding": orders.get("rounding", "ROUND_HALF_EVEN"),
        "cancel_in_erp": orders.get("cancel_in_erp", True),
    }


def connection_settings(connection) -> OrderSettings:
    """The order settings of one storefront connection (its own values over the defaults)."""
    values = {**_defaults(connection.kind), **(connection.settings or {})}
    known = {name for name in OrderSettings.__dataclass_fields__ if name != "platform"}
    values = {k: v for k, v in values.items() if k in known}
    values["release_states"] = frozenset(str(s).lower() for s in values["release_states"])
    if values["guest_policy"] not in GUEST_POLICIES:
        values["guest_policy"] = GUEST_ACCOUNT
    return OrderSettings(platform=connection.kind, **values)
