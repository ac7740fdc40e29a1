"""Benchmark: a month of PSP settlement, imported and matched.

    DATABASE_URL=postgres://user@host/db manage.py benchmark_payouts     # 100,000 transactions, 60 payouts
    manage.py benchmark_payouts --transactions 10000                       # a quick run (SQLite)

Runs on a throwaway test database made from the configured one (PostgreSQL with DATABASE_URL, else
SQLite) and dropped afterwards. Not timed: the posted orders and credit memos the ERP side holds
(OrderLink and Refund rows, bulk-created) and writing the report. Timed: importing one Stripe itemized
payout reconciliation report of that many rows (parse, store, in one transaction; the commercetools
payment lookup is answered from memory, as the sandbox would, so the network is not measured) and
matching every payout again (`payouts_rematch_open`). Peak memory is the process's maximum RSS.
Mix: 80 % charges, 10 % refunds (half with their credit memo), 2 % chargebacks, 3 % fees, 2 % reserves,
3 % adjustments; 1 % of charges a penny off, 5 % paid in USD and settled in EUR (Stripe's customer-facing
amount), 2 % a later capture of the order before them (matched by the sum of its captures).
"""
from __future__ import annotations

import random
import resource
import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Command(BaseCommand):
    help = "Import and match a month of settlement (100,000 transactions across 60 payouts): times and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--transactions", type=int, default=100_000)
        parser.add_argument("--payouts", type=int, default=60)
        parser.add_argument("--seed", type=int, default=15)

    def handle(self, *args, transactions, payouts, seed, **options):
        from django.db import connection

        creation = connection.creation
        old_name = connection.settings_dict["NAME"]
        test_name = creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            self._run(transactions, payouts, seed)
        finally:
            creation.destroy_test_db(old_name, verbosity=0)
        self.stdout.write(f"(test database {test_name} dropped)")

    def _run(self, count: int, payouts: int, seed: int) -> None:
        from integrations.flows.payouts import matching, settlement
        from integrations.models import Connection, OrderLink, Refund

        rng = random.Random(seed)
        conn = Connection.objects.create(code="commercetools", kind="commercetools", name="commercetools shop",
                                         settings={"payout_tolerance_minor": 0})
        start = date(2026, 11, 1)
        lines, orders, refunds, lookup = ["automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,"
                                          "created_utc,currency,gross,fee,net,reporting_category,source_id,"
                                          "payment_intent_id,customer_facing_amount,customer_facing_currency"], [], [], {}
        last_charge = None  # (its OrderLink, its payment intent): a later capture adds to that order
        for n in range(count):
            payout = n * payouts // count
            day = start + timedelta(days=payout * 30 // payouts)
            roll = rng.random()
            order_id = f"ord-{n:07d}"
            amount = rng.randint(500, 25_000)
            facing = ""
            if roll < 0.80 and last_charge is not None and rng.random() < 0.02:
                # A later capture of the previous order (sometimes in the next payout): matched by the sum.
                link, psp = last_charge
                category, gross, fee, order_id = "charge", amount, amount * 15 // 1000 + 25, link.storefront_order_id
                link.total_minor += amount
                link.erp_total_minor += amount
                last_charge = None
            elif roll < 0.80:
                category, gross, fee = "charge", amount, amount * 15 // 1000 + 25
                link = OrderLink(connection=conn, storefront_order_id=order_id, currency="EUR", total_minor=amount,
                                 state=OrderLink.State.POSTED, erp_order_id=f"SO-{n}",
                                 erp_total_minor=amount + (1 if rng.random() < 0.01 else 0))
                if rng.random() < 0.05:  # a US customer: paid in USD, settled in EUR
                    link.currency = "USD"
                    gross = amount * 92 // 100
                    fee = gross * 15 // 1000 + 25
                    facing = f"{amount / 100:.2f},usd"
                orders.append(link)
                last_charge = (link, f"pi_{n:07d}") if not facing else None
            elif roll < 0.90:
                category, gross, fee = "refund", -amount, 0
                orders.append(OrderLink(connection=conn, storefront_order_id=order_id, currency="EUR",
                                        total_minor=amount, state=OrderLink.State.POSTED, erp_order_id=f"SO-{n}",
                                        erp_total_minor=amount))
                posted = rng.random() < 0.5
                refunds.append(Refund(connection=conn, storefront_refund_id=f"re-{n}", storefront_order_id=order_id,
                                      currency="EUR", amount_minor=amount,
                                      state=Refund.State.POSTED if posted else Refund.State.WAITING_ORDER,
                                      credit_memo_id=f"CM-{n}" if posted else "",
                                      credit_memo_total_minor=amount if posted else None))
            elif roll < 0.92:
                category, gross, fee = "dispute", -amount, 1500
                orders.append(OrderLink(connection=conn, storefront_order_id=order_id, currency="EUR",
                                        total_minor=amount, state=OrderLink.State.POSTED, erp_order_id=f"SO-{n}",
                                        erp_total_minor=amount))
            elif roll < 0.95:
                category, gross, fee, order_id = "fee", -rng.randint(10, 500), 0, ""
            elif roll < 0.97:
                category, gross, fee, order_id = "risk_reserved_funds", -amount, 0, ""
            else:
                category, gross, fee, order_id = "other_adjustment", rng.randint(-500, 500), 0, ""
            if category != "charge" or order_id == f"ord-{n:07d}":
                psp = f"pi_{n:07d}" if order_id else ""
            if order_id:
                lookup[psp] = order_id
            lines.append(f"po_{payout:03d},{day.isoformat()},txn_{n:07d},{day.isoformat()} 10:00:00,eur,"
                         f"{gross / 100:.2f},{fee / 100:.2f},{(gross - fee) / 100:.2f},{category},ch_{n:07d},{psp},"
                         f"{facing or ','}")
        OrderLink.objects.bulk_create(orders, batch_size=5000)
        Refund.objects.bulk_create(refunds, batch_size=5000)
        from django.db import connection as db

        if db.vendor == "postgresql":  # the ERP side's statistics as a live database has them (autovacuum)
            with db.cursor() as cursor:
                cursor.execute("ANALYZE")
        data = ("\n".join(lines) + "\n").encode()

        def lookup_from_memory(connection, interface_ids, interaction_ids):  # commercetools, answered from memory
            return {ref: lookup[ref] for ref in interface_ids if ref in lookup}

        settlement._order_lookup = lookup_from_memory
        self.stdout.write(f"{count:,} transactions across {payouts} payouts ({len(data) / 1e6:.1f} MB of CSV), "
                          f"{len(orders):,} posted orders, {len(refunds):,} refunds")

        first_match = [0.0]
        plain_match = matching.payout_match

        def timed_match(payout_id):  # the import matches each payout it touched: timed apart
            began = time.perf_counter()
            try:
                return plain_match(payout_id)
            finally:
                first_match[0] += time.perf_counter() - began

        matching.payout_match = timed_match
        began = time.perf_counter()
        record = settlement.settlement_file_import(conn, "payout_reconciliation.itemized.csv", data)
        imported = time.perf_counter() - began
        matching.payout_match = plain_match
        assert record.status == record.Status.IMPORTED, record.error
        self.stdout.write(f"import (parse, store in one transaction, order lookup): {imported - first_match[0]:.1f} s "
                          f"({record.rows:,} rows); first match (every line written): {first_match[0]:.1f} s")

        began = time.perf_counter()
        rematched = matching.payouts_rematch_open()
        matched = time.perf_counter() - began
        from django.db.models import Count

        from integrations.models import Payout, ReconciliationLine

        statuses = dict(Payout.objects.values_list("status").annotate(n=Count("id")))
        classes = dict(ReconciliationLine.objects.order_by().values_list("difference_class").annotate(n=Count("id")))
        self.stdout.write(f"re-match of {rematched} payouts (nothing changed): {matched:.1f} s "
                          f"({ReconciliationLine.objects.count():,} lines; payouts by status {statuses}; "
                          f"lines by class {classes})")
        for payout in Payout.objects.all()[:3]:
            totals = matching.payout_totals(payout)
            assert totals["matched"] + totals["unmatched"] == totals["received"] == payout.amount_minor
        self.stdout.write(f"peak memory: {_peak_mb():.0f} MB (targets: match < 30 s, < 1 GB)")
