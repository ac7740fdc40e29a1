"""Carrier mappings (ERP carrier name → the storefront's tracking company) are edited in the mapping screens
like the other tables: only admins add them, a second row for the same carrier (in any case) is refused,
and the list shows and exports them."""
import pytest

from mappings.models import CarrierMapping

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_carrier_mapping(client, admin_user, shopify_connection):
    client.force_login(admin_user)
    response = client.post("/mappings/carriers/add/", {"connection": "shopify", "erp_carrier": " RM48 ",
                                                      "tracking_company": "Royal Mail", "active": "on"})
    assert response.status_code == 302
    row = CarrierMapping.objects.get()
    assert (row.erp_carrier, row.tracking_company) == ("RM48", "Royal Mail")
    listing = client.get("/mappings/carriers/")
    assert listing.status_code == 200 and b"Royal Mail" in listing.content
    export = client.get("/mappings/carriers/export.csv")
    assert b"connection,erp_carrier,tracking_company,active" in export.content and b"RM48" in export.content


def test_the_same_carrier_in_another_case_is_refused_with_a_message(client, admin_user, shopify_connection):
    CarrierMapping.objects.create(connection=shopify_connection, erp_carrier="RM48", tracking_company="Royal Mail")
    client.force_login(admin_user)
    response = client.post("/mappings/carriers/add/", {"connection": "shopify", "erp_carrier": "rm48",
                                                      "tracking_company": "DPD UK", "active": "on"})
    assert response.status_code in (200, 422)
    assert b"already mapped to Royal Mail" in response.content
    assert CarrierMapping.objects.count() == 1


def test_ops_may_read_but_not_add_carrier_mappings(client, ops_user, shopify_connection):
    client.force_login(ops_user)
    assert client.get("/mappings/carriers/").status_code == 200
    response = client.post("/mappings/carriers/add/", {"connection": "shopify", "erp_carrier": "X",
                                                      "tracking_company": "UPS"})
    assert response.status_code == 403
    assert not CarrierMapping.objects.exists()
