"""Payouts: settlement FX and multi-capture."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0020_erp_budget")]

    operations = []
