"""Dispatches from the ERP and the storefront fulfilments made of them."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0009_order_timeline_after_posting")]

    operations = []
