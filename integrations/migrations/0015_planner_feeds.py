"""Inventory Planner demand feeds (files served and uploaded)."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0014_ct_delivery")]

    operations = []
