"""Planner and drift leftovers."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0021_payouts_more")]

    operations = []
