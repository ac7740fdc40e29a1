"""Create or update the inventory full-sync schedule (one entry of config/schedules.py)."""
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update the django-q2 schedule of the routine inventory full sync."

    def handle(self, *args, **opts):
        from config.schedules import schedules_ensure

        schedules_ensure(owner="inventory")
        self.stdout.write("inventory-full-sync schedule in place")
