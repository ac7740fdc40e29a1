"""The demo's payouts for finance: one schedule by name however often the demo starts (or the task waits
for the orders again), and the scheduled task itself, run by django-q2's scheduler as the demo queues
it, imports the sandbox shops' payouts over GraphQL and matches them: the refund to its credit memo,
the chargeback to its order, the EU shop's fees above the agreed rate."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule
from django_q.scheduler import scheduler

from integrations.demo import demo_connections_seed
from integrations.management.commands.demo_seed import DEMO_PAYOUTS_SCHEDULE, demo_payouts_queue
from integrations.models import Connection, OrderLink, Payout, ReconciliationLine, Refund

pytestmark = pytest.mark.django_db
C = ReconciliationLine.DifferenceClass


def _demo_schedules():
    return list(Schedule.objects.filter(name__startswith=DEMO_PAYOUTS_SCHEDULE).values_list("name", "args"))


def _run_due_schedules():
    """What the cluster's scheduler does once the schedule is due (tasks run inline: q_sync)."""
    Schedule.objects.filter(name=DEMO_PAYOUTS_SCHEDULE).update(next_run=timezone.now() - timedelta(seconds=1))
    scheduler()


def test_the_demo_keeps_one_payouts_schedule_however_often_it_starts(q_sync):
    Schedule.objects.create(name=f"{DEMO_PAYOUTS_SCHEDULE} (0)", func="x", schedule_type=Schedule.ONCE, repeats=0)

    demo_payouts_queue()
    demo_payouts_queue()

    assert _demo_schedules() == [(DEMO_PAYOUTS_SCHEDULE, "(0,)")]


def test_the_scheduled_task_waits_for_the_orders_under_the_same_schedule(sandbox, q_sync):
    demo_connections_seed(sandbox.url)
    demo_payouts_queue()

    _run_due_schedules()  # no demo order is posted yet: it asks to run again later

    assert _demo_schedules() == [(DEMO_PAYOUTS_SCHEDULE, "(1,)")]
    assert not Payout.objects.exists()


def _posted(shop, connection, *, currency="GBP", **fields) -> tuple[dict, OrderLink]:
    """A paid sandbox order (charged in its Shopify Payments ledger) as the order flow leaves it: posted."""
    order = shop.create_order(line_items=[{"sku": "MUG-001", "quantity": 2, "price": "9.50"}], financial_status="paid",
                              currency=currency, **fields)
    total = int(Decimal(order["total_price"]) * 100)
    link = OrderLink.objects.create(connection=connection, storefront_order_id=str(order["id"]),
                                    order_number=order["name"], currency=currency, total_minor=total,
                                    state=OrderLink.State.POSTED, erp_order_id=f"SO-{order['id']}",
                                    erp_total_minor=total)
    return order, link


def test_the_scheduled_task_imports_and_matches_the_demo_payouts(sandbox, q_sync):
    demo_connections_seed(sandbox.url)
    uk, eu = Connection.objects.get(code="shopify"), Connection.objects.get(code="shopify-eu")
    uk_shop, eu_shop = sandbox.shopify, sandbox.server.apps["/shopify-eu"]
    uk_orders = [_posted(uk_shop, uk) for _ in range(5)]
    for _ in range(2):
        _posted(eu_shop, eu, currency="EUR")
    refunded, refunded_link = uk_orders[0]
    memo = Refund.objects.create(connection=uk, storefront_refund_id="9101000777", storefront_order_id=str(refunded["id"]),
                                 currency="GBP", amount_minor=950, state=Refund.State.POSTED, credit_memo_id="CM-1",
                                 credit_memo_total_minor=950)
    demo_payouts_queue()

    _run_due_schedules()

    assert _demo_schedules() == []  # a ONCE schedule is gone once it has run: nothing left to repeat
    assert Payout.objects.filter(connection=uk).count() == 2 and Payout.objects.filter(connection=eu).count() == 1
    refund_line = ReconciliationLine.objects.get(balance_transaction__type="refund")
    assert (refund_line.refund, refund_line.erp_document, refund_line.difference_class) == (memo, "CM-1", C.NONE)
    chargeback = ReconciliationLine.objects.get(balance_transaction__type="dispute")
    assert chargeback.difference_class == C.NONE and chargeback.order == uk_orders[1][1]
    eu_payout = Payout.objects.get(connection=eu)
    assert eu_payout.lines.filter(difference_class=C.FEE_MISMATCH).count() == 2
    assert eu_payout.status == Payout.Status.VARIANCE
    for payout in Payout.objects.all():  # every line drills down and the totals add up
        assert sum(payout.lines.values_list("actual_minor", flat=True)) == payout.amount_minor
    assert refunded_link.pk in set(ReconciliationLine.objects.values_list("order_id", flat=True))
