"""Migrate and load the demo users, mappings and schedules (what `demo` does before it starts)."""
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, then seed demo users (one per role), mapping rows and django-q2 schedules."

    def handle(self, *args, **opts):
        from integrations.demo import demo_mappings_seed, demo_users_seed
        from integrations.management.commands.demo import DEMO_PASSWORDS

        call_command("migrate", verbosity=0)
        demo_users_seed(DEMO_PASSWORDS)
        demo_mappings_seed()
        call_command("ledgerline_schedules", verbosity=0)
        self._inventory_planner()
        demo_payouts_queue()
        self._first_health_check()
        self.stdout.write("demo data in place")

    def _first_health_check(self) -> None:
        """Every connection's health line checked once the task cluster is up (the schedule then
        checks every 15 minutes), so the Connections screen does not open on "not checked"."""
        from datetime import timedelta

        from django.utils import timezone
        from django_q.models import Schedule
        from django_q.tasks import schedule

        name = "demo: first connection health check"
        Schedule.objects.filter(name=name).delete()  # one, however often the demo starts
        schedule("integrations.flows.backfill.health_checks.connections_health_refresh_all", name=name,
                 schedule_type=Schedule.ONCE, next_run=timezone.now() + timedelta(seconds=20))

    def _inventory_planner(self) -> None:
        """The sandbox Inventory Planner account, and a first pull of its recommendations queued for the
        task cluster (the sandbox is up by the time it runs; the schedule pulls again every 15 minutes)."""
        from django.conf import settings
        from django_q.tasks import async_task

        from integrations.models import Connection

        connection, _ = Connection.objects.get_or_create(code="inventory-planner", defaults={
            "kind": "inventory_planner", "name": "Inventory Planner"})
        connection.base_url = f"{settings.SANDBOX_URL}/inventory-planner/api/v1"
        connection.credentials = {"api_key": "sandbox-ip-key"}
        connection.settings = {**(connection.settings or {}), "account_id": "a1000"}
        connection.save()
        async_task("integrations.flows.replenishment.tasks.pull_recommendations", task_name="demo: first replenishment pull")


# --- Payouts: real work for finance once the demo orders are in ----------------------------------


DEMO_PAYOUTS_SCHEDULE = "demo: payouts"


def demo_payouts_queue(attempt: int = 0, delay_seconds: int = 30) -> None:
    """Run `demo_payouts` in the task cluster a little later (the orders are sent after the seed). One
    schedule by name, however often the demo starts or the task waits again: the one there is replaced
    (a ONCE schedule is deleted by the cluster once it has run), and the numbered ones older demos left
    ("demo: payouts (0)", ...) go too."""
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import Schedule
    from django_q.tasks import schedule

    Schedule.objects.filter(name=DEMO_PAYOUTS_SCHEDULE).delete()
    Schedule.objects.filter(name__startswith=f"{DEMO_PAYOUTS_SCHEDULE} (").delete()
    schedule(f"{__name__}.demo_payouts", attempt, name=DEMO_PAYOUTS_SCHEDULE, schedule_type=Schedule.ONCE,
             next_run=timezone.now() + timedelta(seconds=delay_seconds))


def demo_payouts(attempt: int = 0) -> str:
    """Payouts of the demo orders through the real path (the sandbox shops' Shopify Payments ledgers,
    imported over GraphQL): the UK shop's day with the refunded mug (its credit memo matches) and the
    orders that did not post, a chargeback paid out on its own, and the EU shop's day charged above its
    agreed fee. Four-eyes is on. Waits (re-queued) until the orders and the credit memo are posted."""
    import requests
    from django.conf import settings

    from integrations.domain import from_minor_units
    from integrations.flows.payouts import payouts_import_shopify
    from integrations.models import Connection, OrderLink, Payout, Refund
    from integrations.onboarding.requirements import DEFAULT_FLOWS
    from integrations.sandbox.shopify import DEMO_SCOPES
    from integrations.sandbox.shopify_payments import PAYMENTS_SCOPE

    uk, eu = Connection.objects.filter(code="shopify").first(), Connection.objects.filter(code="shopify-eu").first()
    if uk is None or eu is None or Payout.objects.filter(connection__in=(uk, eu)).exists():
        return "nothing to do"
    refund = Refund.objects.filter(connection=uk, state=Refund.State.POSTED).first()
    posted = OrderLink.objects.filter(connection__in=(uk, eu), state__in=OrderLink.IN_ERP)
    if refund is None or posted.filter(connection=eu).count() < 2 or posted.filter(connection=uk).count() < 5:
        if attempt < 20:
            demo_payouts_queue(attempt + 1, 20)
        return "orders not in yet"
    for connection, agreed in ((uk, "1.5"), (eu, "1.2")):  # the EU contract says 1.2 %: Shopify charged 1.5 %
        connection.settings = {**(connection.settings or {}), "payout_fee_percent": agreed,
                               "payout_fee_fixed_minor": 25, "payout_four_eyes": True}
        connection.save()
    ct = Connection.objects.filter(code="commercetools").first()
    if ct is not None:
        ct.settings = {**(ct.settings or {}), "payout_four_eyes": True}
        ct.save()
    base = settings.SANDBOX_URL

    def sandbox(shop: str, path: str, body: dict) -> dict:
        response = requests.post(f"{base}/{shop}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    for shop, connection in (("shopify", uk), ("shopify-eu", eu)):  # the merchant grants the payouts scope
        token = connection.secret("access_token") or (settings.SHOPIFY["access_token"] if shop == "shopify" else "")
        sandbox(shop, "access-tokens", {"token": token, "scopes": [*DEMO_SCOPES, PAYMENTS_SCOPE]})
        connection.settings = {**(connection.settings or {}), "flows": [*DEFAULT_FLOWS, "payouts"]}
        connection.save()
    sandbox("shopify", "payments/refunds", {"order_id": refund.storefront_order_id, "refund_id": refund.storefront_refund_id,
                                            "amount": str(from_minor_units(refund.amount_minor, refund.currency))})
    sandbox("shopify", "payments/payouts", {})
    disputed = posted.filter(connection=uk).exclude(storefront_order_id=refund.storefront_order_id).order_by("pk").first()
    sandbox("shopify", "payments/disputes", {"order_id": disputed.storefront_order_id})
    sandbox("shopify", "payments/payouts", {})
    sandbox("shopify-eu", "payments/payouts", {})
    for connection in (uk, eu):
        payouts_import_shopify(connection=connection)
    return f"{Payout.objects.count()} demo payouts imported"
