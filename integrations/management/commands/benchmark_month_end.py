"""Benchmark: the month-end pack of a month of payouts (the export half of the payouts benchmark;
`benchmark_payouts` times the import and the matching).

    DATABASE_URL=postgres://user@host/db manage.py benchmark_month_end    # 100,000 transactions, 60 payouts
    manage.py benchmark_month_end --transactions 10000                      # a quick run (SQLite)

Runs on a throwaway test database made from the configured one (PostgreSQL with DATABASE_URL, else
SQLite) and dropped afterwards. Not timed: bulk-creating the payouts, their balance transactions and
reconciliation lines (`--unmatched` of them unmatched, spread over the difference classes; every payout
left open, the worst case for the pack). Timed: the month-end report (the page's queries), its CSV and
its XLSX. Peak memory is the process's maximum RSS. Targets: export < 30 s, < 1 GB.
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
    help = "Build a month of payouts (100,000 transactions across 60) and time its month-end page, CSV and XLSX."

    def add_arguments(self, parser):
        parser.add_argument("--transactions", type=int, default=100_000)
        parser.add_argument("--payouts", type=int, default=60)
        parser.add_argument("--unmatched", type=float, default=0.10, help="share of lines left unreconciled")
        parser.add_argument("--seed", type=int, default=15)

    def handle(self, *args, transactions, payouts, unmatched, seed, **options):
        from django.db import connection

        creation = connection.creation
        old_name = connection.settings_dict["NAME"]
        test_name = creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            self._run(transactions, payouts, unmatched, seed, connection.vendor)
        finally:
            creation.destroy_test_db(old_name, verbosity=0)
        self.stdout.write(f"(test database {test_name} dropped)")

    def _run(self, count: int, payouts: int, unmatched: float, seed: int, vendor: str) -> None:
        from integrations.flows.payouts import month_end
        from integrations.models import BalanceTransaction, Connection, Payout, ReconciliationLine

        rng = random.Random(seed)
        C = ReconciliationLine.DifferenceClass
        classes = [C.MISSING_ERP_POSTING, C.AMOUNT_MISMATCH, C.FEE_MISMATCH, C.UNKNOWN_ORDER, C.CURRENCY_CONVERSION]
        conn = Connection.objects.create(code="shopify", kind="shopify", name="Shopify store")
        start = date(2026, 11, 1)
        built = time.perf_counter()
        rows = Payout.objects.bulk_create(
            Payout(connection=conn, source=Payout.Source.SHOPIFY_PAYMENTS, external_id=f"po-{p:03d}", currency="EUR",
                   amount_minor=0, payout_date=start + timedelta(days=p * 30 // payouts), period=start)
            for p in range(payouts))
        ids = [p.pk for p in Payout.objects.filter(connection=conn).order_by("external_id")]
        for p, payout in zip(ids, rows):
            payout.pk = p
        transactions, lines, totals = [], [], [0] * payouts
        for n in range(count):
            index = n * payouts // count
            amount = rng.randint(500, 25_000)
            transactions.append(BalanceTransaction(payout_id=ids[index], connection=conn, external_id=f"bt-{n:07d}",
                                                   type="charge", storefront_order_id=f"ord-{n:07d}",
                                                   amount_minor=amount, net_minor=amount, currency="EUR"))
            totals[index] += amount
        BalanceTransaction.objects.bulk_create(transactions, batch_size=5000)
        bt_ids = list(BalanceTransaction.objects.filter(connection=conn).order_by("external_id").values_list("pk", "payout_id", "amount_minor"))
        for bt_id, payout_id, amount in bt_ids:
            if rng.random() < unmatched:
                klass = rng.choice(classes)
                expected = None if klass in (C.MISSING_ERP_POSTING, C.UNKNOWN_ORDER) else amount - rng.randint(1, 99)
                lines.append(ReconciliationLine(payout_id=payout_id, balance_transaction_id=bt_id, kind="unmatched",
                                                difference_class=klass, expected_minor=expected, actual_minor=amount,
                                                variance_minor=amount - (expected or 0), note="benchmark"))
            else:
                lines.append(ReconciliationLine(payout_id=payout_id, balance_transaction_id=bt_id, kind="matched",
                                                expected_minor=amount, actual_minor=amount))
        ReconciliationLine.objects.bulk_create(lines, batch_size=5000)
        for p, total in zip(ids, totals):
            Payout.objects.filter(pk=p).update(amount_minor=total, status=Payout.Status.VARIANCE)
        del transactions, lines, bt_ids
        self.stdout.write(f"built {count:,} transactions across {payouts} payouts on {vendor} in "
                          f"{time.perf_counter() - built:.1f} s (not timed)")

        started = time.perf_counter()
        report = month_end.month_end_report(period=start)
        page_s = time.perf_counter() - started
        started = time.perf_counter()
        csv_text = month_end.month_end_csv(report)
        csv_s = time.perf_counter() - started
        started = time.perf_counter()
        xlsx = month_end.month_end_xlsx(report)
        xlsx_s = time.perf_counter() - started
        rows_out = csv_text.count("\n") - 1
        self.stdout.write(
            f"month-end page (report): {page_s:.2f} s · {len(report.payouts)} open payouts\n"
            f"CSV export: {csv_s:.2f} s · {rows_out:,} rows · {len(csv_text) / 1e6:.1f} MB\n"
            f"XLSX export: {xlsx_s:.2f} s · {len(xlsx) / 1e6:.1f} MB\n"
            f"export total (report + CSV + XLSX): {page_s + csv_s + xlsx_s:.2f} s (target < 30 s)\n"
            f"peak memory (max RSS): {_peak_mb():.0f} MB (target < 1024 MB)")
