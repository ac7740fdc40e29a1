"""Connections are data: every outside system is a Connection (storefronts, ERPs, the planner),
with its base URL, encrypted credentials and settings. The table keeps its rows."""
import django.utils.timezone
from django.db import migrations, models

import integrations.secrets


class Migration(migrations.Migration):
    dependencies = [("integrations", "0004_order_totals"), ("mappings", "0001_initial")]

    operations = [
        migrations.RenameModel("StorefrontConnection", "Connection"),
        migrations.RenameField("connection", "platform", "kind"),
        migrations.AlterField(
            "connection", "kind",
            models.CharField(max_length=20, choices=[
                ("shopify", "Shopify shop"), ("commercetools", "commercetools project"), ("rest_erp", "REST ERP"),
                ("prima", "Prima"), ("inventory_planner", "Inventory Planner account")]),
        ),
        migrations.AddField("connection", "base_url",
                            models.URLField(blank=True, help_text="API base URL (blank: the environment's)")),
        migrations.AddField("connection", "credentials",
                            integrations.secrets.EncryptedCredentialsField(blank=True, default="")),
        migrations.AddField("connection", "created_at", models.DateTimeField(default=django.utils.timezone.now)),
        migrations.AddField("connection", "updated_at", models.DateTimeField(auto_now=True)),
        migrations.AddConstraint(
            "inboundevent",
            models.UniqueConstraint(fields=["connection", "event_id"], condition=~models.Q(event_id=""),
                                    name="uniq_inbound_vendor_event_per_connection"),
        ),
    ]
