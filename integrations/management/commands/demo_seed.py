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
        self.stdout.write("demo data in place")

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
