"""The commercetools order poller against our sandbox over real HTTP (the emulator cannot move
lastModifiedAt or sort, so cursor behaviour is only testable here)."""
import pytest

from integrations.connectors.commercetools import CommercetoolsClient
from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import InboundEvent, PollCursor
from tests.factories import ConnectionFactory


@pytest.fixture
def ct(sandbox):
    return sandbox.commercetools


def stored_external_ids(connection):
    return sorted(InboundEvent.objects.filter(connection=connection).values_list("external_id", flat=True))


def test_first_run_stores_every_order_once(ct, ct_connection):
    orders = [ct.create_order() for _ in range(5)]

    created = commercetools_orders_poll(page_size=2)

    assert created == 5
    assert stored_external_ids(ct_connection) == sorted(f"order:{o['id']}@1" for o in orders)
    event = InboundEvent.objects.get(external_id=f"order:{orders[0]['id']}@1")
    assert (event.topic, event.resource_id, event.payload["orderNumber"]) == (
        "order/poll", orders[0]["id"], orders[0]["orderNumber"])


def test_a_second_run_stores_nothing_new(ct, ct_connection):
    for _ in range(3):
        ct.create_order()
    commercetools_orders_poll()

    assert commercetools_orders_poll() == 0
    assert InboundEvent.objects.filter(connection=ct_connection).count() == 3


def test_it_resumes_from_its_cursor_and_stores_only_new_orders(ct, ct_connection):
    old = [ct.create_order() for _ in range(3)]
    commercetools_orders_poll(connection_code="commercetools")
    cursor = PollCursor.objects.get(connection=ct_connection, resource="orders")
    assert (cursor.last_modified_at, cursor.last_id) == (old[-1]["lastModifiedAt"], old[-1]["id"])
    ct.queries_seen.clear()

    new = [ct.create_order() for _ in range(2)]
    paid = ct.set_payment_state(old[0]["id"], "Paid")
    created = commercetools_orders_poll(connection_code="commercetools")

    assert created == 3
    assert InboundEvent.objects.filter(external_id__in=[f"order:{o['id']}@1" for o in new]).count() == 2
    assert InboundEvent.objects.get(external_id=f"order:{old[0]['id']}@2").payload["paymentState"] == "Paid"
    first_query = next(q for path, q in ct.queries_seen if path.endswith("/orders"))
    assert old[-1]["lastModifiedAt"] in first_query["where"][0]
    assert paid["version"] == 2


def test_a_crash_mid_run_resumes_after_the_last_stored_page(ct, ct_connection):
    orders = [ct.create_order() for _ in range(5)]
    client = CommercetoolsClient.from_settings()
    real = client.orders_modified_since

    def crash_after_first_page(*args, **kwargs):
        pages = real(*args, **kwargs)
        yield next(pages)
        raise ConnectionError("worker killed")

    client.orders_modified_since = crash_after_first_page
    with pytest.raises(ConnectionError):
        commercetools_orders_poll(client=client, page_size=2)
    cursor = PollCursor.objects.get(connection=ct_connection, resource="orders")
    assert cursor.last_id == orders[1]["id"]

    created = commercetools_orders_poll(page_size=2)

    assert created == 3
    assert InboundEvent.objects.filter(connection=ct_connection).count() == 5


def test_only_the_named_active_commercetools_connection_is_polled(ct, ct_connection):
    other = ConnectionFactory(code="commercetools-eu", kind="commercetools", name="EU shop")
    paused = ConnectionFactory(code="commercetools-old", kind="commercetools", name="Old", active=False)
    ct.create_order()

    created = commercetools_orders_poll(connection_code="commercetools-eu")

    assert created == 1
    assert InboundEvent.objects.filter(connection=other).count() == 1
    assert InboundEvent.objects.filter(connection=ct_connection).count() == 0
    assert commercetools_orders_poll() == 1  # ct_connection catches up; the paused one never polls
    assert InboundEvent.objects.filter(connection=paused).count() == 0
