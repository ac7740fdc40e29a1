"""Backfill and re-sync runs of a storefront's orders."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0011_refunds")]

    operations = []
