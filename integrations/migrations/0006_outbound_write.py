"""One outbound-write log for every write to any outside system (was the ERP's only)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0005_connections_as_data")]

    operations = [
        migrations.RenameModel("ErpWrite", "OutboundWrite"),
        migrations.AddField("outboundwrite", "connection", models.ForeignKey(
            blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
            to="integrations.connection")),
        migrations.AddField("outboundwrite", "system", models.CharField(blank=True, max_length=20)),
        migrations.AddField("outboundwrite", "subject_type", models.CharField(blank=True, max_length=30)),
        migrations.AddField("outboundwrite", "subject_id", models.CharField(blank=True, max_length=100)),
        migrations.AlterField("outboundwrite", "action", models.CharField(max_length=40)),
        migrations.AddIndex("outboundwrite", models.Index(fields=["subject_type", "subject_id"],
                                                          name="outbound_write_subject_idx")),
    ]
