"""Demo data: one user per role, mapping rows, and orders sent through the real storefront paths."""
from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from integrations.models import Connection
from mappings.models import DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping


def demo_users_seed(passwords: dict[str, str]) -> dict[str, tuple[str, str]]:
    """One user per role; the password is reset on every demo start so the printed one works."""
    User = get_user_model()
    users = {}
    for role, password in passwords.items():
        user, _ = User.objects.get_or_create(username=role, defaults={"email": f"{role}@ledgerline.local"})
        user.set_password(password)
        user.is_staff = role == "admin"
        user.is_superuser = role == "admin"
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        users[role] = (role, password)
    return users


# The second demo shop: its own token, webhook secret and domain (the sandbox's EU shop has the same).
EU_SHOP = {"access_token": "shpat_sandbox_eu_token", "webhook_secret": "sandbox-shopify-eu-webhook-secret"}


def demo_connections_seed(sandbox_url: str | None = None) -> None:
    """The demo's systems as connections: two Shopify shops (UK and EU) and a commercetools project
    against one ERP. Blank URLs and secrets use the environment's defaults (the bundled sandboxes);
    the EU shop has its own credentials, encrypted like any connection's."""
    from django.conf import settings

    for code, kind, name in (("shopify", "shopify", "Shopify store"),
                             ("commercetools", "commercetools", "commercetools shop"),
                             ("erp", "rest_erp", "ERP")):
        Connection.objects.get_or_create(code=code, defaults={"kind": kind, "name": name})
    eu, _ = Connection.objects.get_or_create(code="shopify-eu", defaults={"kind": "shopify", "name": "Shopify EU store"})
    eu.base_url = f"{sandbox_url or settings.SANDBOX_URL}/shopify-eu"
    eu.credentials = dict(EU_SHOP)
    eu.settings = {**(eu.settings or {}), "shop_domain": "ledgerline-eu.myshopify.com"}
    eu.save()
    # Both demo shops are custom apps made in the shop's admin, their webhooks set up there (the sandbox's
    # webhook target): the Admin API does not list those, so their health line does not ask for
    # subscriptions. A shop connected by OAuth from the Connections screen gets subscriptions instead.
    for shop in Connection.objects.filter(code__in=("shopify", "shopify-eu")):
        shop.settings = {**(shop.settings or {}), "webhooks": "shop_admin"}
        shop.save()
    # demo_seed made the planner's connection before the sandbox's port was known (--sandbox-port).
    if sandbox_url:
        Connection.objects.filter(code="inventory-planner").update(base_url=f"{sandbox_url}/inventory-planner/api/v1")
        demo_catalogue_seed(sandbox_url)


# The item master in the demo: every storefront takes the ERP's catalogue, released by hand from the
# publish queue (so e-commerce decides when the demo's products change), in its own currency.
DEMO_CATALOGUE_SETTINGS = {
    "shopify": {"catalogue_currency": "GBP", "catalogue_required_attributes": ["colour"]},
    "shopify-eu": {"catalogue_currency": "EUR", "catalogue_required_attributes": ["colour"]},
    "commercetools": {"catalogue_currency": "GBP", "catalogue_tax_category": "standard",
                      "catalogue_product_types": {"apparel": "default", "homeware": "default"}},
}


def demo_catalogue_seed(sandbox_url: str) -> None:
    """The sandbox ERP's item-master demo items (a product with three variants and scoped, tiered, dated
    prices; one new item still missing its tax code and lead time), catalogue settings on the demo
    storefronts, and a first item-master sync queued: the held item shows as an e-commerce exception,
    the complete ones wait in the publish queue."""
    import requests
    from django_q.tasks import async_task

    for code, own in DEMO_CATALOGUE_SETTINGS.items():
        connection = Connection.objects.filter(code=code).first()
        if connection is not None:
            connection.settings = {**(connection.settings or {}), "catalogue_publish": True,
                                   "catalogue_release": "manual", **own}
            connection.save()
    try:
        requests.post(f"{sandbox_url}/erp/_sandbox/seed-catalogue", timeout=10).raise_for_status()
    except requests.RequestException:
        return  # a sandbox without the item master's demo items: the sync reads what there is
    async_task("integrations.flows.catalogue.tasks.catalogue_sync_all", task_name="demo-catalogue-first-sync")


def demo_mappings_seed() -> None:
    demo_connections_seed()
    shopify = Connection.objects.get(code="shopify")
    ct = Connection.objects.get(code="commercetools")
    eu = Connection.objects.get(code="shopify-eu")
    for conn in (shopify, eu, ct):
        DepotMapping.objects.update_or_create(connection=conn, country="", storefront_location="",
                                              defaults={"depot_code": "MAIN"})
        for rate, country, code in (("0.2", "GB", "T1"), ("0", "GB", "T0"), ("0.19", "DE", "DE19"),
                                    ("0.07", "DE", "DE7"), ("0.1", "JP", "JP10"), ("0", "US", "T0")):
            TaxCodeMapping.objects.update_or_create(connection=conn, tax_category="", rate=Decimal(rate), country=country,
                                                    defaults={"erp_tax_code": code})
    DepotMapping.objects.update_or_create(connection=ct, country="DE", storefront_location="",
                                          defaults={"depot_code": "NORTH"})
    LocationMapping.objects.update_or_create(connection=shopify, storefront_location="gid://shopify/Location/1",
                                             defaults={"erp_warehouse": "MAIN", "buffer_units": 2})
    LocationMapping.objects.update_or_create(connection=shopify, storefront_location="gid://shopify/Location/2",
                                             defaults={"erp_warehouse": "NORTH"})
    LocationMapping.objects.update_or_create(connection=eu, storefront_location="gid://shopify/Location/1",
                                             defaults={"erp_warehouse": "MAIN", "buffer_units": 2})
    LocationMapping.objects.update_or_create(connection=eu, storefront_location="gid://shopify/Location/2",
                                             defaults={"erp_warehouse": "NORTH"})
    LocationMapping.objects.update_or_create(connection=ct, storefront_location="main-warehouse",
                                             defaults={"erp_warehouse": "MAIN", "buffer_units": 1})
    LocationMapping.objects.update_or_create(connection=ct, storefront_location="north-store",
                                             defaults={"erp_warehouse": "NORTH"})
    kit, _ = SkuMapping.objects.update_or_create(connection=shopify, storefront_sku="GIFT-SET",
                                                 defaults={"erp_item_code": "", "note": "T-shirt + 2 mugs"})
    kit.components.update_or_create(erp_item_code="TEE-BLK-M", defaults={"quantity": 1})
    kit.components.update_or_create(erp_item_code="MUG-001", defaults={"quantity": 2})


def demo_orders_send(sandbox) -> str:
    """Orders from both storefronts, through the real paths: signed Shopify webhooks delivered by the
    Shopify sandbox, and commercetools orders that the poller finds. One uses an unknown SKU."""
    from django_q.tasks import async_task

    shopify = sandbox.apps["/shopify"]
    ct = sandbox.apps["/commercetools"]
    sent = []
    for fields in (
        {"email": "alice@example.com", "line_items": [{"sku": "TEE-BLK-M", "quantity": 2}, {"sku": "MUG-001", "quantity": 1}]},
        {"email": "bob@example.com", "line_items": [{"sku": "HOODIE-GRY-L", "quantity": 1, "discount": "5.00"}]},
        {"email": "carol@example.com", "line_items": [{"sku": "GIFT-SET", "quantity": 1, "price": "29.00"}]},
        {"email": "dan@example.com", "line_items": [{"sku": "TEE-RED-M", "quantity": 1, "price": "19.00"}]},
    ):
        order = shopify.create_order(deliver="sync", financial_status="paid", **fields)
        sent.append(f"Shopify {order['name']} (paid)")
    pending = shopify.create_order(deliver="sync", email="erin@example.com",
                                   line_items=[{"sku": "TEE-WHT-M", "quantity": 1}])
    sent.append(f"Shopify {pending['name']} (pending: waits for payment)")
    later = shopify.create_order(deliver="sync", email="frank@example.com", line_items=[{"sku": "TEE-BLK-L", "quantity": 1}])
    shopify.mark_paid(later["id"], deliver="sync")
    sent.append(f"Shopify {later['name']} (created pending, then paid)")
    # Work for finance: a paid order later partly refunded (its credit memo is posted), and a US order
    # with duties; for ops: an order cancelled after it was posted (cancelled in the ERP too).
    refunded = shopify.create_order(deliver="sync", financial_status="paid", email="gail@example.com",
                                    line_items=[{"sku": "MUG-001", "quantity": 2}])
    # One of the two mugs comes back: refunds/create carries the refund, which becomes one credit memo.
    shopify.refund_order(refunded["id"], lines=[(0, 1)], restock_type="return", note="One mug arrived chipped",
                         deliver="sync")
    sent.append(f"Shopify {refunded['name']} (paid, then one mug refunded and returned: a credit memo)")
    duties = shopify.create_order(deliver="sync", financial_status="paid", email="hank@example.com", tax_rate="0",
                                  shipping_address={"country": "United States", "country_code": "US"},
                                  line_items=[{"sku": "HOODIE-GRY-L", "quantity": 1,
                                               "duty": {"amount": "6.40", "hs_code": "6110.20", "origin": "PT"}}])
    sent.append(f"Shopify {duties['name']} (to the US with duties)")
    cancelled = shopify.create_order(deliver="sync", financial_status="paid", email="ivy@example.com",
                                     line_items=[{"sku": "TEE-WHT-M", "quantity": 1}])
    shopify.cancel_order(cancelled["id"], deliver="sync")
    sent.append(f"Shopify {cancelled['name']} (paid, then cancelled)")
    guest = shopify.create_order(deliver="sync", financial_status="paid", email="",
                                 line_items=[{"sku": "TEE-BLK-S", "quantity": 1}])
    sent.append(f"Shopify {guest['name']} (guest checkout without an e-mail)")

    eu_shop = sandbox.apps["/shopify-eu"]
    for email, line in (("lena@example.de", {"sku": "TEE-BLK-M", "quantity": 1}),
                        ("marc@example.fr", {"sku": "MUG-001", "quantity": 3})):
        order = eu_shop.create_order(deliver="sync", financial_status="paid", email=email, currency="EUR", tax_rate="0.19",
                                     shipping_address={"country": "Germany", "country_code": "DE", "city": "Berlin"},
                                     line_items=[line])
        sent.append(f"Shopify EU {order['name']} (paid, EUR)")

    for fields in (
        {"customer_email": "gina@example.de", "currency": "EUR", "country": "DE", "payment_state": "Paid",
         "high_precision": True, "line_items": [{"sku": "TEE-BLK-S", "quantity": 3, "price": "12.3456", "tax_rate": 0.19}]},
        {"customer_email": "hugo@example.co.uk", "currency": "GBP", "country": "GB", "payment_state": "Paid",
         "line_items": [{"sku": "MUG-001", "quantity": 2, "price": "9.50", "tax_rate": 0.2}],
         "shipping": {"name": "Standard", "price": "3.95", "tax_rate": 0.2}},
        {"customer_email": "ito@example.jp", "currency": "JPY", "country": "JP", "payment_state": "Paid",
         "line_items": [{"sku": "HOODIE-GRY-L", "quantity": 1, "price": "8800", "tax_rate": 0.1}]},
        {"customer_email": "jan@example.de", "currency": "EUR", "country": "DE", "payment_state": "Pending",
         "line_items": [{"sku": "TEE-WHT-M", "quantity": 1, "price": "15.00", "tax_rate": 0.19}]},
    ):
        order = ct.create_order(**fields)
        sent.append(f"commercetools {order['orderNumber']} ({fields['payment_state']})")
    imported = ct.import_order(stated_gross="31.00", customer_email="kim@example.de", currency="EUR", country="DE",
                               payment_state="Paid",
                               line_items=[{"sku": "TEE-BLK-M", "quantity": 1, "price": "25.00", "tax_rate": 0.19}])
    sent.append(f"commercetools {imported['orderNumber']} (imported; its stated total does not add up: finance)")
    async_task("integrations.tasks.poll_commercetools_orders", task_name="demo-first-poll")
    return "Demo orders sent:\n" + "\n".join(f"  - {line}" for line in sent)
