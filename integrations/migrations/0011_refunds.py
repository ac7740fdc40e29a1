"""Storefront refunds and the credit memos made of them."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0010_fulfilment")]

    operations = []
