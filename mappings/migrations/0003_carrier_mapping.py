"""Carrier mappings: the ERP's carrier names to the storefront's tracking companies."""
import django.db.models.deletion
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0006_outbound_write"),
        ("mappings", "0002_mapping_proposals_and_labels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HistoricalCarrierMapping",
            fields=[
                ("id", models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name="ID")),
                ("erp_carrier", models.CharField(help_text="The carrier as the ERP names it", max_length=100,
                                                 verbose_name="ERP carrier")),
                ("tracking_company", models.CharField(
                    help_text="As the storefront knows it, e.g. Royal Mail, DHL Express, UPS", max_length=100,
                    verbose_name="Tracking company")),
                ("active", models.BooleanField(default=True, verbose_name="Active")),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.CharField(max_length=100, null=True)),
                ("history_type", models.CharField(choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")],
                                                  max_length=1)),
                ("connection", models.ForeignKey(blank=True, db_constraint=False, null=True,
                                                 on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                                 to="integrations.connection", verbose_name="Storefront")),
                ("history_user", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                   related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "historical carrier mapping",
                "verbose_name_plural": "historical carrier mappings",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="CarrierMapping",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("erp_carrier", models.CharField(help_text="The carrier as the ERP names it", max_length=100,
                                                 verbose_name="ERP carrier")),
                ("tracking_company", models.CharField(
                    help_text="As the storefront knows it, e.g. Royal Mail, DHL Express, UPS", max_length=100,
                    verbose_name="Tracking company")),
                ("active", models.BooleanField(default=True, verbose_name="Active")),
                ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 to="integrations.connection", verbose_name="Storefront")),
            ],
            options={
                "ordering": ["connection", "erp_carrier"],
                "constraints": [models.UniqueConstraint(fields=("connection", "erp_carrier"),
                                                        name="uniq_carrier_mapping")],
            },
        ),
    ]
