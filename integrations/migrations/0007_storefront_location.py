"""Storefront locations by name: what each stock push's location check read from the storefront."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0006_outbound_write")]

    operations = [
        migrations.CreateModel(
            name="StorefrontLocation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("location", models.CharField(max_length=200)),
                ("name", models.CharField(blank=True, max_length=200)),
                ("active", models.BooleanField(default=True)),
                ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("connection", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="storefront_locations", to="integrations.connection")),
            ],
            options={"ordering": ["connection", "name", "location"]},
        ),
        migrations.AddConstraint(
            model_name="storefrontlocation",
            constraint=models.UniqueConstraint(fields=("connection", "location"), name="uniq_storefront_location"),
        ),
    ]
