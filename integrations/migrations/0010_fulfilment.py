"""Dispatches from the ERP and the storefront fulfilments made of them."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0009_order_timeline_after_posting")]

    operations = [
        migrations.CreateModel(
            name="DispatchCursor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("erp", models.CharField(max_length=100, unique=True)),
                ("cursor", models.TextField(blank=True)),
                ("last_run_count", models.PositiveIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="Dispatch",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("erp", models.CharField(max_length=100)),
                ("erp_dispatch_id", models.CharField(max_length=100)),
                ("sales_order_id", models.CharField(blank=True, max_length=100)),
                ("external_reference", models.CharField(blank=True, db_index=True, max_length=200)),
                ("lines", models.JSONField(blank=True, default=list)),
                ("carrier", models.CharField(blank=True, max_length=100)),
                ("tracking_number", models.CharField(blank=True, max_length=200)),
                ("tracking_url", models.CharField(blank=True, max_length=1000)),
                ("depot", models.CharField(blank=True, max_length=50)),
                ("dispatched_at", models.CharField(blank=True, max_length=40)),
                ("source", models.CharField(choices=[("poll", "ERP poll"), ("webhook", "ERP webhook")], default="poll",
                                            max_length=10)),
                ("received_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("storefront_status", models.CharField(choices=[
                    ("pending", "Waiting to be sent"), ("sending", "Sending to the storefront"),
                    ("sent", "Storefront updated"), ("retrying", "Retry scheduled"), ("failed", "Needs attention"),
                    ("no_order", "No matching order")], db_index=True, default="pending", max_length=20)),
                ("tracking_company", models.CharField(blank=True, max_length=100)),
                ("storefront_references", models.JSONField(blank=True, default=list)),
                ("customer_notified", models.BooleanField(default=False)),
                ("notified_at", models.DateTimeField(blank=True, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("next_retry_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                ("inbound_event", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                    related_name="+", to="integrations.inboundevent")),
                ("order", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="dispatches", to="integrations.orderlink")),
                ("timeline_event", models.OneToOneField(blank=True, null=True,
                                                        on_delete=django.db.models.deletion.SET_NULL,
                                                        related_name="dispatch", to="integrations.orderevent")),
            ],
            options={
                "ordering": ["received_at", "id"],
                "constraints": [models.UniqueConstraint(fields=("erp", "erp_dispatch_id"), name="uniq_erp_dispatch")],
            },
        ),
    ]
