"""Shared ERP request budget across hosts."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0019_item_master")]

    operations = []
