"""Storefront locations by name: the stock push's location check records what the storefront calls
each location or channel, and the inventory screen shows that name instead of a GID or channel key."""
import pytest
from django.urls import reverse

from integrations.flows.inventory import inventory_sync_start
from integrations.models.inventory import StorefrontLocation
from tests.factories import LocationMappingFactory

pytestmark = pytest.mark.django_db


def _stock(sandbox, sku, location):
    sandbox.shopify.add_product(sku.title(), [{"sku": sku, "price": "10"}])
    sandbox.shopify.set_level(sku, location, available=0)
    sandbox.erp.add_item(sku)
    sandbox.erp.set_stock(sku, "MAIN", on_hand=7)


def test_a_shopify_sync_names_its_locations_on_the_inventory_screen(client, ops_user, sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    warehouse = sandbox.shopify.add_location("Leeds warehouse")
    sandbox.shopify.add_location("Pop-up shop")
    sandbox.erp.add_depot("MAIN")
    number = warehouse.rsplit("/", 1)[1]  # an admin may map the bare number as well as the GID
    LocationMappingFactory(connection=shopify_connection, storefront_location=number, erp_warehouse="MAIN")
    _stock(sandbox, "TEE-1", warehouse)

    run = inventory_sync_start(connection=shopify_connection, trigger="manual", queue=False)
    assert run.levels_pushed == 1

    names = StorefrontLocation.objects.names([shopify_connection.pk])
    assert names[(shopify_connection.pk, number)] == "Leeds warehouse"
    assert names[(shopify_connection.pk, warehouse)] == "Leeds warehouse"
    assert "Pop-up shop" in names.values()  # unmapped, but named for the exception and the screens

    client.force_login(ops_user)
    html = client.get(reverse("inventory")).content.decode()
    assert f'<td title="{number}">Leeds warehouse</td>' in html  # the name, the id only as a hover hint
    assert warehouse not in html


def test_a_commercetools_sync_names_its_supply_channels(client, ops_user, sandbox, ct_connection):
    sandbox.commercetools.create_channel(key="eu-warehouse", name="Rotterdam warehouse")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=ct_connection, storefront_location="eu-warehouse", erp_warehouse="MAIN")
    sandbox.commercetools.create_inventory_entry(sku="TEE-1", channel_key="eu-warehouse", quantity_on_stock=4)
    sandbox.erp.set_stock("TEE-1", "MAIN", on_hand=20)

    inventory_sync_start(connection=ct_connection, queue=False)

    assert StorefrontLocation.objects.get(connection=ct_connection, location="eu-warehouse").name == "Rotterdam warehouse"
    client.force_login(ops_user)
    assert '<td title="eu-warehouse">Rotterdam warehouse</td>' in client.get(reverse("inventory")).content.decode()


def test_a_renamed_location_shows_its_new_name_after_the_next_sync(sandbox, shopify_connection):
    sandbox.shopify.reset(seed=False)
    web = sandbox.shopify.add_location("Web")
    sandbox.erp.add_depot("MAIN")
    LocationMappingFactory(connection=shopify_connection, storefront_location=web, erp_warehouse="MAIN")
    inventory_sync_start(connection=shopify_connection, queue=False)
    number = int(web.rsplit("/", 1)[1])
    sandbox.shopify.locations[number]["name"] = "Online store"

    inventory_sync_start(connection=shopify_connection, queue=False)

    assert StorefrontLocation.objects.names([shopify_connection.pk])[(shopify_connection.pk, web)] == "Online store"
    assert StorefrontLocation.objects.filter(connection=shopify_connection, location=web).count() == 1
