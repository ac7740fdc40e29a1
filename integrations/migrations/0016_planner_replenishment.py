"""Inventory Planner replenishment (purchase-order recommendations and approvals)."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0015_planner_feeds")]

    operations = []
