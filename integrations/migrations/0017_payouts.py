"""Payouts, balance transactions, settlement files and their reconciliation."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0016_planner_replenishment")]

    operations = []
