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
        self.stdout.write("demo data in place")
