"""Demo data: one user per role, mapping rows, and orders sent through the real storefront paths."""
from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from integrations.models import StorefrontConnection
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


def demo_mappings_seed() -> None:
    shopify = StorefrontConnection.objects.get(code="shopify")
    ct = StorefrontConnection.objects.get(code="commercetools")
    for conn in (shopify, ct):
        DepotMapping.objects.update_or_create(connection=conn, country="", storefront_location="",
                                              defaults={"depot_code": "MAIN"})
        for rate, country, code in (("0.2", "GB", "T1"), ("0", "GB", "T0"), ("0.19", "DE", "DE19"),
                                    ("0.07", "DE", "DE7"), ("0.1", "JP", "JP10")):
            TaxCodeMapping.objects.update_or_create(connection=conn, tax_category="", rate=Decimal(rate), country=country,
                                                    defaults={"erp_tax_code": code})
    DepotMapping.objects.update_or_create(connection=ct, country="DE", storefront_location="",
                                          defaults={"depot_code": "NORTH"})
    LocationMapping.objects.update_or_create(connection=shopify, storefront_location="gid://shopify/Location/1",
                                             defaults={"erp_warehouse": "MAIN", "buffer_units": 2})
    LocationMapping.objects.update_or_create(connection=shopify, storefront_location="gid://shopify/Location/2",
                                             defaults={"erp_warehouse": "NORTH"})
    LocationMapping.objects.update_or_create(connection=ct, storefront_location="main-warehouse",
                                             defaults={"erp_warehouse": "MAIN", "buffer_units": 1})
    LocationMapping.objects.update_or_create(connection=ct, storefront_location="north-store",
                                             defaults={"erp_warehouse": "NORTH"})
    kit, _ = SkuMapping.objects.update_or_create(connection=shopify, storefront_sku="GIFT-SET",
                                                 defaults={"erp_item_code": "", "note": "T-shirt + 2 mugs"})
    kit.components.update_or_create(erp_item_code="TEE-BLK-M", defaults={"quantity": 1})
    kit.components.update_or_create(erp_item_code="MUG-001", defaults={"quantity": 2})
