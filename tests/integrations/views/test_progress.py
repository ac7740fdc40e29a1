"""The home page's live progress while a flash sale runs: orders received and posted in the last
minutes, the queue, the ERP requests; it polls quickly while anything moves and slowly when quiet."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import InboundEvent, OrderLink, OutboundWrite
from integrations.views.progress import FAST_POLL_SECONDS, IDLE_POLL_SECONDS, flash_sale_progress
from tests.factories import InboundEventFactory, OrderLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sale(shopify_connection):
    """Five minutes into a sale: 4 orders received (3 posted, 1 waiting), 1 event queued, ERP requests."""
    now = timezone.now()
    for minutes_ago, state in ((4, "posted"), (2, "posted"), (0, "posted"), (0, "received")):
        at = now - timedelta(minutes=minutes_ago)
        OrderLinkFactory(connection=shopify_connection, state=state, created_at=at,
                         posted_at=at if state == "posted" else None)  # never after "now", or a sale a
        # second before the minute turns would post into the next minute, outside the window
    OrderLinkFactory(connection=shopify_connection, state="posted", created_at=now - timedelta(hours=3),
                     posted_at=now - timedelta(hours=3))  # long before the window
    InboundEventFactory(connection=shopify_connection, status=InboundEvent.Status.PENDING)
    for n in range(3):
        OutboundWrite.objects.create(system="rest_erp", action="create_sales_order", external_reference=f"r{n}",
                                     status="succeeded", started_at=now, finished_at=now + timedelta(seconds=0.5))
    OutboundWrite.objects.create(system="rest_erp", action="create_sales_order", external_reference="bad",
                                 status="failed", started_at=now)
    OutboundWrite.objects.create(system="shopify", action="set_inventory", external_reference="stock-1",
                                 status="succeeded", started_at=now)
    return now


def test_it_counts_what_moved_in_the_last_minutes(sale):
    progress = flash_sale_progress(now=sale)
    assert (progress.received_total, progress.posted_total) == (4, 3)
    assert progress.received[-1] == 2 and progress.posted[-1] >= 1  # the current minute is the last bar
    assert (progress.waiting_to_post, progress.pending_events) == (1, 1)
    assert (progress.erp_total, progress.erp_failed, progress.stock_writes) == (4, 1, 1)
    assert progress.erp_seconds == pytest.approx(0.5)
    assert progress.moving and progress.poll_seconds == FAST_POLL_SECONDS


def test_the_fragment_shows_the_sale_and_keeps_polling_quickly(client, outsider, sale):
    client.force_login(outsider)
    response = client.get(reverse("home-progress"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<section id="progress"')
    assert f'hx-trigger="every {FAST_POLL_SECONDS}s"' in html
    assert "<strong>4</strong> orders received" in html and "<strong>3</strong> posted to the ERP" in html
    assert "<strong>1</strong> order waiting to post" in html and "<strong>1</strong> inbound event queued" in html
    assert "1 failed" in html and "<svg" in html and html.count("<rect") == 20
    assert "no-store" in response["Cache-Control"] and "HX-Request" in response["Vary"]


def test_a_quiet_shop_polls_only_now_and_then(client, outsider, shopify_connection):
    OrderLinkFactory(connection=shopify_connection, state="posted", created_at=timezone.now() - timedelta(hours=2),
                     posted_at=timezone.now() - timedelta(hours=2))
    client.force_login(outsider)
    html = client.get(reverse("home-progress"), headers={"HX-Request": "true"}).content.decode()
    assert f'hx-trigger="every {IDLE_POLL_SECONDS}s"' in html and "quiet" in html
    assert "<strong>0</strong> orders received" in html


def test_the_queue_alone_counts_as_moving(shopify_connection):
    InboundEventFactory(connection=shopify_connection, status=InboundEvent.Status.PENDING)
    assert flash_sale_progress().moving


def test_the_home_page_includes_the_panel_and_a_plain_visit_gets_a_whole_page(client, outsider, sale):
    client.force_login(outsider)
    home = client.get(reverse("home")).content.decode()
    assert f'hx-get="{reverse("home-progress")}"' in home and 'hx-trigger="load"' in home
    page = client.get(reverse("home-progress")).content.decode()
    assert "<html" in page and page.count("<h1") == 1 and "<strong>4</strong> orders received" in page


def test_it_rejects_post(client, outsider):
    client.force_login(outsider)
    assert client.post(reverse("home-progress")).status_code == 405


def test_it_redirects_to_login_when_signed_out(client):
    response = client.get(reverse("home-progress"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_order_posted_long_after_it_arrived_counts_as_posted_now(shopify_connection):
    now = timezone.now()
    OrderLinkFactory(connection=shopify_connection, state=OrderLink.State.POSTED, created_at=now - timedelta(days=1),
                     posted_at=now)
    progress = flash_sale_progress(now=now)
    assert (progress.received_total, progress.posted_total) == (0, 1)
