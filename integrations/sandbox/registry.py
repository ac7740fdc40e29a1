"""Which vendor sandboxes exist and under which prefix each is served."""
from __future__ import annotations

import importlib

# prefix -> "module:Class"; a vendor module takes keyword options it knows and ignores the rest.
VENDORS = {
    "/erp": "integrations.sandbox.erp:ErpSandbox",
    "/prima": "integrations.sandbox.prima:PrimaSandbox",
    "/shopify": "integrations.sandbox.shopify:ShopifySandbox",
    "/shopify-eu": "integrations.sandbox.shopify:ShopifyEuSandbox",
    "/commercetools": "integrations.sandbox.commercetools:CommercetoolsSandbox",
    "/inventory-planner": "integrations.sandbox.inventory_planner:InventoryPlannerSandbox",
}


def build_vendor_apps(**options):
    apps = {}
    for prefix, target in VENDORS.items():
        module_name, class_name = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # not written yet
            raise
        apps[prefix] = getattr(module, class_name)(**options)
    return apps
