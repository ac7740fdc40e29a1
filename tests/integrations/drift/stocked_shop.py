"""The shop both inventory drift test modules start from: a Shopify location "Web" mapped to the ERP
depot MAIN, TEE-1 (30 on hand) and MUG-1 (12) sold there, and one sync run so the shop holds what the
ERP gives; `other_items` adds ERP stock of items the shop does not sell."""
from integrations.flows.inventory import inventory_sync_start
from tests.factories import LocationMappingFactory


def stocked_shop(sandbox, connection, *, other_items: int = 0) -> str:
    """The Web location's gid, after the first sync succeeded."""
    sandbox.shopify.reset(seed=False)
    web = sandbox.shopify.add_location("Web")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=connection, storefront_location=web, erp_warehouse="MAIN")
    for sku, on_hand in (("TEE-1", 30), ("MUG-1", 12)):
        sandbox.shopify.add_product(sku.title(), [{"sku": sku, "price": "10"}])
        sandbox.shopify.set_level(sku, web, available=0)
        sandbox.erp.add_item(sku)
        sandbox.erp.set_stock(sku, "MAIN", on_hand=on_hand)
    for n in range(1, other_items + 1):
        sandbox.erp.set_stock(f"OTHER-{n}", "MAIN", on_hand=1)
    assert inventory_sync_start(connection=connection, trigger="manual", queue=False).status == "succeeded"
    return web
