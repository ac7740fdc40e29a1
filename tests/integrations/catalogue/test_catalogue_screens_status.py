"""The catalogue status and publish queue screens: who may use them, the page and its HTMX fragment."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGES = [("catalogue", "Catalogue status", "item-table"), ("catalogue-queue", "Publish queue", "queue-table")]


@pytest.mark.parametrize("name, heading, fragment", PAGES)
def test_it_shows_the_page_to_ecommerce(client, ecommerce_user, shopify_connection, name, heading, fragment):
    client.force_login(ecommerce_user)
    body = client.get(reverse(name)).content.decode()
    assert f"<h1>{heading}</h1>" in body and f'id="{fragment}"' in body
    assert 'aria-current="page">Catalogue</a>' in body  # the main navigation says where we are


@pytest.mark.parametrize("name, heading, fragment", PAGES)
def test_an_htmx_request_gets_the_fragment_only(client, admin_user, name, heading, fragment):
    client.force_login(admin_user)
    response = client.get(reverse(name), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert f'id="{fragment}"' in body and "<h1" not in body and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("name", ["catalogue", "catalogue-queue"])
def test_it_refuses_other_teams_and_asks_visitors_to_sign_in(client, ops_user, name):
    assert "/accounts/login/" in client.get(reverse(name))["Location"]
    client.force_login(ops_user)
    assert client.get(reverse(name)).status_code == 403


def test_the_catalogue_link_is_only_in_the_menu_of_those_who_may_open_it(client, ops_user, ecommerce_user):
    client.force_login(ops_user)
    assert reverse("catalogue") not in client.get(reverse("orders")).content.decode()
    client.force_login(ecommerce_user)
    assert f'href="{reverse("catalogue")}"' in client.get(reverse("orders")).content.decode()


def test_release_refuses_get(client, ecommerce_user):
    client.force_login(ecommerce_user)
    assert client.get(reverse("catalogue-release")).status_code == 405


# --- with an item master ---------------------------------------------------------------------------

@pytest.fixture
def erp_connection(db):
    from tests.factories import ConnectionFactory

    return ConnectionFactory(code="erp", kind="rest_erp", name="REST ERP")


def _item(erp, code, *, name="", fingerprint="f1", status="active"):
    from integrations.models.catalogue import CatalogItem

    return CatalogItem.objects.create(erp_connection=erp, item_id=f"id-{code}", code=code, name=name or code,
                                      product_key=code.rsplit("-", 1)[0], fingerprint=fingerprint, status=status,
                                      data={"code": code, "prices": [{"currency": "GBP", "amount": "10.00", "type": "list"}]})


def _pub(item, connection, state, **extra):
    from integrations.models.catalogue import CatalogPublication

    return CatalogPublication.objects.create(item=item, connection=connection, state=state, **extra)


@pytest.fixture
def catalogue(erp_connection, shopify_connection, ct_connection):
    from django.utils import timezone

    tee = _item(erp_connection, "TEE-BLK-M", name="Black tee M", fingerprint="new")
    mug = _item(erp_connection, "MUG-001", name="Enamel mug")
    _pub(tee, shopify_connection, "live", published_fingerprint="old", last_pushed_at=timezone.now(), sku="TEE-BLK-M")
    _pub(tee, ct_connection, "live", published_fingerprint="new", last_pushed_at=timezone.now())
    _pub(mug, shopify_connection, "waiting", missing=["cost", "tax code"])
    return {"tee": tee, "mug": mug}


def _row(body: str, pk: int) -> str:
    start = body.index(f'id="item-{pk}"')
    return body[start:body.index("</tr>", start)]


def test_status_shows_where_each_item_is_live_what_it_waits_for_and_what_changed(client, ecommerce_user, catalogue):
    client.force_login(ecommerce_user)
    body = client.get(reverse("catalogue")).content.decode()
    tee = _row(body, catalogue["tee"].pk)
    shop_line = tee[tee.index("Shopify store:"):tee.index("</li>", tee.index("Shopify store:"))]
    ct_line = tee[tee.index("commercetools shop:"):tee.index("</li>", tee.index("commercetools shop:"))]
    assert "Live" in shop_line and "pushed" in shop_line and "changed in the ERP since" in shop_line
    assert "Live" in ct_line and "changed in the ERP since" not in ct_line
    mug = _row(body, catalogue["mug"].pk)
    assert "Waiting for data" in mug and "waits for <strong>cost, tax code</strong>" in mug and "never pushed" in mug
    assert "not published here" in mug  # nothing for commercetools yet


@pytest.mark.parametrize("query, shown, hidden", [
    ({"state": "waiting"}, "MUG-001", "TEE-BLK-M"),
    ({"state": "changed"}, "TEE-BLK-M", "MUG-001"),
    ({"q": "mug"}, "MUG-001", "TEE-BLK-M"),
    ({"state": "live", "connection": "commercetools"}, "TEE-BLK-M", "MUG-001"),
])
def test_status_filters_by_state_storefront_and_search(client, ecommerce_user, catalogue, query, shown, hidden):
    client.force_login(ecommerce_user)
    body = client.get(reverse("catalogue"), query).content.decode()
    assert f"<strong>{shown}</strong>" in body and f"<strong>{hidden}</strong>" not in body


def test_status_pages_and_tells_an_empty_filter_from_an_empty_catalogue(client, ecommerce_user, erp_connection,
                                                                      shopify_connection):
    client.force_login(ecommerce_user)
    assert "has not been read from the ERP yet" in client.get(reverse("catalogue")).content.decode()
    for n in range(30):
        _item(erp_connection, f"SKU-{n:02}")
    first = client.get(reverse("catalogue")).content.decode()
    assert "Page 1 of 2 · 30 items" in first and "<strong>SKU-24</strong>" in first and "SKU-25" not in first
    assert "<strong>SKU-29</strong>" in client.get(reverse("catalogue"), {"page": 2}).content.decode()
    assert "No item matches these filters." in client.get(reverse("catalogue"), {"q": "nothing"}).content.decode()


def test_the_queue_lists_ready_and_waiting_items_with_what_they_wait_for(client, ecommerce_user, catalogue,
                                                                          erp_connection, ct_connection):
    ready = _pub(_item(erp_connection, "HOODIE-GRY-L"), ct_connection, "ready")
    client.force_login(ecommerce_user)
    body = client.get(reverse("catalogue-queue")).content.decode()
    assert f'id="publication-{ready.pk}"' in body and "Ready to publish" in body
    assert "cost, tax code" in body and "TEE-BLK-M" not in body  # live items are not in the queue
    assert f'aria-label="Release HOODIE-GRY-L to commercetools shop"' in body
    only_ready = client.get(reverse("catalogue-queue"), {"state": "ready"}).content.decode()
    assert "HOODIE-GRY-L" in only_ready and "MUG-001" not in only_ready


def test_release_hands_the_chosen_publications_to_the_flow(client, ecommerce_user, catalogue, erp_connection,
                                                           ct_connection, monkeypatch):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kw: queued.append(args))
    ready = _pub(_item(erp_connection, "HOODIE-GRY-L"), ct_connection, "ready")
    waiting = catalogue["mug"].publications.get()
    live = catalogue["tee"].publications.first()
    client.force_login(ecommerce_user)
    response = client.post(reverse("catalogue-release"), {"ids": [ready.pk, waiting.pk, live.pk]}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "1 released" in body and "1 still waits for data from the ERP and stays held" in body
    assert "1 was no longer in the queue" in body and 'id="queue-table"' in body
    ready.refresh_from_db()
    waiting.refresh_from_db()
    live.refresh_from_db()
    assert ready.released_at is not None and waiting.released_at is None and live.released_at is None
    assert queued == [("integrations.flows.catalogue.tasks.publish_storefront", ct_connection.pk)]
    assert response["HX-Trigger"] == "catalogueChanged"
    nothing = client.post(reverse("catalogue-release"), {}, HTTP_HX_REQUEST="true").content.decode()
    assert "Choose at least one item" in nothing


def test_the_queue_shows_running_pushes_with_their_progress_and_polls_them(client, ecommerce_user, ct_connection):
    from integrations.models.catalogue import CatalogRun

    CatalogRun.objects.create(kind="bulk", connection=ct_connection, state="waiting", total=400, done=120, failed=3)
    CatalogRun.objects.create(kind="publish", connection=ct_connection, state="done", total=5, done=5)
    client.force_login(ecommerce_user)
    body = client.get(reverse("catalogue-queue")).content.decode()
    assert 'value="120"' in body and "<strong>120</strong> of 400 done" in body and "3 failed" in body
    assert 'hx-trigger="every 3s"' in body and "of 5 done" not in body
    fragment = client.get(reverse("catalogue-runs"), HTTP_HX_REQUEST="true").content.decode()
    assert "of 400 done" in fragment and "<h1" not in fragment
    CatalogRun.objects.update(state="done")
    assert "every 3s" not in client.get(reverse("catalogue-runs"), HTTP_HX_REQUEST="true").content.decode()
