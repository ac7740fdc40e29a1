"""Drift-check runs and findings."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0017_payouts")]

    operations = []
