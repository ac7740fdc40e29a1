"""config.bad_input: NUL characters anywhere in a request, and ids no database column holds, are a
clear 4xx before any view runs (PostgreSQL would refuse the NUL with a 500; SQLite would overflow)."""
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.bad_input import db_int
from exceptions_queue.models import ExceptionActivity
from tests.factories import ExceptionRecordFactory, OrderLinkFactory

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


@pytest.fixture
def ops_client(client, ops_user):
    client.force_login(ops_user)
    return client


@pytest.mark.parametrize("url", ["/orders/?q=a%00b", "/exceptions/?q=%00", "/mappings/skus/?q=x%00", "/orders/?a%00b=1"],
                         ids=["orders", "exceptions", "mappings", "in-a-name"])
def test_a_nul_in_a_query_parameter_is_400_with_a_message(ops_client, url):
    response = ops_client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_in_a_query_parameter_of_the_api_is_json(ops_client):
    response = ops_client.get("/exceptions/api/exceptions/?q=%00")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid query parameter 'q'" and "NUL" in response.json()["message"]


def test_a_nul_in_the_path_is_400(ops_client):
    response = ops_client.get("/orders/%00/")
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_in_a_form_field_is_400_and_nothing_is_written(ops_client, ops_user):
    record = ExceptionRecordFactory(team="ops")
    response = ops_client.post(f"/exceptions/{record.pk}/comment/", {"note": "looked at it\x00"})
    assert response.status_code == 400
    assert "form field 'note'" in response.content.decode()
    assert not ExceptionActivity.objects.filter(action="commented").exists()


def test_a_nul_in_a_multipart_form_field_is_400(ops_client):
    upload = SimpleUploadedFile("mappings.csv", b"storefront_sku\n", content_type="text/csv")
    response = ops_client.post("/mappings/skus/import/", {"file": upload, "csv_text": "a,b\x00"})
    assert response.status_code == 400
    assert "form field 'csv_text'" in response.content.decode()


def test_a_nul_in_a_header_is_400(ops_client):
    response = ops_client.get("/orders/", headers={"X-Forwarded-For": "1.2.3.4\x00"})
    assert response.status_code == 400
    assert "X-Forwarded-For" in response.content.decode()


def test_a_clean_request_passes(ops_client):
    assert ops_client.get("/orders/?q=%23+1043&page=2").status_code == 200


def test_a_multipart_post_to_a_webhook_still_reaches_its_signature_check(client, shopify_connection):
    # The webhook reads its own body (for the HMAC): the middleware must not consume it first.
    response = client.post("/webhooks/shopify/shopify/", {"id": "1"}, headers={"X-Shopify-Hmac-Sha256": "forged"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", [f"/orders/{HUGE}/", f"/exceptions/{HUGE}/", f"/mappings/skus/{HUGE}/",
                                  f"/exceptions/jobs/{2**63}/", f"/inventory/runs/{HUGE}/progress/"])
def test_an_id_beyond_64_bits_in_the_path_is_404(ops_client, path):
    assert ops_client.get(path).status_code == 404


def test_an_id_beyond_64_bits_in_an_api_path_is_a_json_404(ops_client):
    response = ops_client.get(f"/exceptions/api/exceptions/{HUGE}/")
    assert response.status_code == 404 and response.json()["error"] == "not found"


def test_the_largest_64_bit_id_is_an_ordinary_404_and_real_ids_still_open(ops_client):
    assert ops_client.get(f"/orders/{2**63 - 1}/").status_code == 404
    order = OrderLinkFactory()
    assert ops_client.get(f"/orders/{order.pk}/").status_code == 200


def test_a_refusal_is_logged_as_a_warning_without_the_value(ops_client, caplog):
    with caplog.at_level(logging.WARNING, logger="ledgerline.security"):
        ops_client.get("/orders/?q=password-hunter2%00")
    [record] = [r for r in caplog.records if r.name == "ledgerline.security"]
    assert record.levelno == logging.WARNING
    assert "query parameter 'q'" in record.getMessage()
    assert "hunter2" not in record.getMessage()


@pytest.mark.parametrize("value, expected", [
    ("42", 42), (" 7 ", 7), (str(2**63 - 1), 2**63 - 1), (str(2**63), None), (HUGE, None), ("-1", None),
    ("1e3", None), ("²", None), ("", None), ("12a", None),
])
def test_db_int_accepts_only_ids_a_64_bit_column_holds(value, expected):
    assert db_int(value) == expected


@pytest.mark.parametrize("url", [
    f"/orders/?page={HUGE}", f"/orders/?connection={HUGE}&state=posted", f"/inventory/?page={HUGE}",
    f"/inventory/?connection={HUGE}", f"/mappings/skus/?page={HUGE}", f"/exceptions/?page={HUGE}",
    f"/mappings/skus/export.csv?connection={HUGE}",
])
def test_numbers_beyond_64_bits_in_list_query_parameters_still_show_the_list(ops_client, url):
    assert ops_client.get(url).status_code == 200


def test_an_id_beyond_64_bits_in_a_page_path_shows_the_sites_404_page(ops_client):
    response = ops_client.get(f"/orders/{HUGE}/")
    assert response.status_code == 404 and "<html" in response.content.decode().lower()


def test_a_sign_in_with_a_username_longer_than_any_users_is_400(client, ops_user):
    from axes.models import AccessAttempt

    response = client.post("/accounts/login/", {"username": "u" * 300, "password": "guess"})
    assert response.status_code == 400 and "at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    # an ordinary failed sign-in is still the login page with its error
    assert client.post("/accounts/login/", {"username": "u" * 150, "password": "guess"}).status_code == 200
