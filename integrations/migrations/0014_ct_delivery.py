"""commercetools deliveries applied in resource order (sequence numbers per resource)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0013_progress_indexes")]

    operations = [
        migrations.CreateModel(
            name="CommercetoolsResourceSequence",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("resource_type", models.CharField(default="order", max_length=40)),
                ("resource_id", models.CharField(max_length=200)),
                ("applied_sequence", models.PositiveBigIntegerField(default=0)),
                ("covered_version", models.PositiveBigIntegerField(default=0)),
                ("waiting_since", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="ct_sequences", to="integrations.connection")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("connection", "resource_type", "resource_id"),
                                                        name="uniq_ct_resource_sequence")],
            },
        ),
    ]
