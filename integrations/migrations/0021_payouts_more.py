"""Payouts: settlement FX and multi-capture."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0020_erp_budget")]

    operations = [
        migrations.AddField(
            model_name="balancetransaction",
            name="presentment_amount_minor",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="balancetransaction",
            name="presentment_currency",
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.AddField(
            model_name="balancetransaction",
            name="exchange_rate",
            field=models.DecimalField(blank=True, decimal_places=12, max_digits=24, null=True),
        ),
    ]
