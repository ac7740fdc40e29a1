"""Planner and drift leftovers: the ERP's open purchase orders kept for the CSV connector's purchase
orders file; the retired hourly mapping health schedule removed on upgrade (the catalogue drift check,
schedule "drift: catalogue", replaces it)."""
import django.utils.timezone
from django.db import migrations, models

RETIRED_SCHEDULES = ["mappings health check"]


def remove_retired_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=RETIRED_SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0021_payouts_more"), ("django_q", "0018_task_success_index")]

    operations = [
        migrations.CreateModel(
            name="PlannerPurchaseOrderLine",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("erp_po_id", models.CharField(max_length=100)),
                ("erp_reference", models.CharField(blank=True, max_length=200)),
                ("line_number", models.PositiveIntegerField()),
                ("status", models.CharField(max_length=30)),
                ("supplier", models.CharField(blank=True, max_length=200)),
                ("warehouse", models.CharField(max_length=50)),
                ("item_code", models.CharField(max_length=100)),
                ("quantity", models.IntegerField()),
                ("received", models.IntegerField(default=0)),
                ("unit_cost", models.CharField(blank=True, max_length=40)),
                ("expected_date", models.CharField(blank=True, max_length=40)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("removed", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["warehouse", "erp_po_id", "line_number"],
                "constraints": [models.UniqueConstraint(fields=("erp_po_id", "line_number"), name="uniq_planner_po_line")],
            },
        ),
        migrations.RunPython(remove_retired_schedules, migrations.RunPython.noop),
    ]
