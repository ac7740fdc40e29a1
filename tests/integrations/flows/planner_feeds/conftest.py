"""The planner-feed world: an ERP with items (cost, lead time, supplier) and stock in two warehouses,
two Shopify channels selling from the MAIN pool, a kit, posted orders with discount codes,
promotion tags, a ship-to region and a return, and an Inventory Planner connection."""
from __future__ import annotations

import copy
import types

import pytest

from integrations.models import Connection, OrderLink
from mappings.models import KitComponent
from tests.factories import ConnectionFactory, LocationMappingFactory, OrderLinkFactory, SkuMappingFactory
from tests.payloads import shopify_order, shopify_refund

from .sftp_server import LoopbackSftpServer

FEED_PASSWORD = "feed-pass-7f3a"


@pytest.fixture
def planner_app():
    """The planner's side as the sandbox keeps it (its import state lives on this object)."""
    return types.SimpleNamespace()


def post_order(connection, payload: dict, *, depot: str = "MAIN", state: str = "posted") -> OrderLink:
    return OrderLinkFactory(connection=connection, storefront_order_id=str(payload["id"]), order_number=payload["name"],
                            currency=payload["currency"], state=state, payload=payload, erp_payload={"depot": depot})


@pytest.fixture
def world(sandbox):
    erp = sandbox.erp
    erp.add_depot("MAIN")
    erp.add_depot("NORTH")
    erp.add_item("TEE-BLK-M", "T-shirt black M", unit_cost="6.40", lead_time_days=21, supplier="Northern Textiles")
    erp.add_item("MUG-001", "Enamel mug", unit_cost="3.15", lead_time_days=35, supplier="Stoke Enamelware")
    erp.add_item("SHIPPING", "Shipping charge")
    erp.set_stock("TEE-BLK-M", "MAIN", on_hand=40, allocated=3, reserved=1, damaged=2, in_transit=5)
    erp.set_stock("MUG-001", "MAIN", on_hand=12)
    erp.set_stock("TEE-BLK-M", "NORTH", on_hand=7)

    uk = ConnectionFactory(code="shopify", kind="shopify", name="UK shop")
    eu = ConnectionFactory(code="shopify-eu", kind="shopify", name="EU shop")
    planner = ConnectionFactory(code="planner", kind="inventory_planner", name="Inventory Planner",
                                settings={"warehouses": ["MAIN"], "currency": "GBP"},
                                credentials={"feed_password": FEED_PASSWORD})
    LocationMappingFactory(connection=uk, storefront_location="gid://shopify/Location/1001", erp_warehouse="MAIN")
    LocationMappingFactory(connection=eu, storefront_location="gid://shopify/Location/2001", erp_warehouse="MAIN")
    kit = SkuMappingFactory(connection=uk, storefront_sku="GIFT-SET", erp_item_code="")
    KitComponent.objects.create(kit=kit, erp_item_code="TEE-BLK-M", quantity=1)
    KitComponent.objects.create(kit=kit, erp_item_code="MUG-001", quantity=2)

    uk_order = shopify_order(
        number=1043, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "discounts": ["4.00"]},
                            {"sku": "GIFT-SET", "price": "30.00", "quantity": 1}],
        location_id=1001, tags="newsletter, summer-sale",
        discount_codes=[{"code": "SUMMER10", "amount": "4.00", "type": "fixed_amount"}],
        shipping_address={"country_code": "GB", "country": "United Kingdom", "province_code": "ENG"})
    returned = copy.deepcopy(uk_order)
    returned["refunds"] = [shopify_refund(uk_order, lines=[{"index": 0, "quantity": 1, "restock_type": "return"}],
                                          refund_id=880001)]
    eu_order = shopify_order(number=2001, currency="EUR", country="DE", lines=[{"sku": "MUG-001", "price": "12.00",
                                                                                "quantity": 3}],
                             location_id=2001, shipping_address={"country_code": "DE", "province_code": "BE"})
    return types.SimpleNamespace(
        erp=erp, uk=uk, eu=eu, planner=planner,
        uk_link=post_order(uk, returned), eu_link=post_order(eu, eu_order), uk_order=returned, eu_order=eu_order)


@pytest.fixture
def sftp_server(tmp_path):
    server = LoopbackSftpServer(str(tmp_path / "drop"))
    (tmp_path / "drop").mkdir()
    yield server
    server.shutdown()


@pytest.fixture
def advanced(world, sftp_server, settings):
    """The planner connection with an Advanced CSV drop on the loopback SFTP server."""
    settings.PLANNER_FEEDS = {"cursor_lag_seconds": 0, "upload_backoff": 0.0, "sftp_timeout": 5.0}
    planner: Connection = world.planner
    planner.settings = {**planner.settings, "sftp_host": "127.0.0.1", "sftp_port": sftp_server.port,
                        "sftp_username": sftp_server.username, "sftp_remote_dir": "/inbound",
                        "sftp_host_key": sftp_server.known_host}
    planner.credentials = {**planner.credentials, "sftp_password": sftp_server.password}
    planner.save()
    return world


def sftp_body(server: LoopbackSftpServer) -> dict:
    return {"sftp": {"host": "127.0.0.1", "port": server.port, "username": server.username,
                     "password": server.password, "remote_dir": "/inbound", "host_key": server.known_host}}
