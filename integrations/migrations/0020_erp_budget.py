"""Shared ERP request budget across hosts, and the sales orders waiting for a batch request."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0019_item_master")]

    operations = [
        migrations.CreateModel(
            name="ErpBudget",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("endpoint", models.CharField(max_length=200, unique=True)),
                ("next_slot", models.FloatField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="ReadySalesOrder",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("endpoint", models.CharField(max_length=200)),
                ("request", models.JSONField()),
                ("details", models.JSONField(default=dict)),
                ("ready_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("batch", models.CharField(blank=True, default="", max_length=40)),
                ("order", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                               to="integrations.orderlink")),
                ("write", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                            to="integrations.outboundwrite")),
            ],
            options={
                "indexes": [models.Index(fields=["endpoint", "batch", "id"], name="ready_sales_order_batch_idx")],
            },
        ),
    ]
