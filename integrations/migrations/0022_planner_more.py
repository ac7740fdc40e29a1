"""Planner and drift leftovers: the retired hourly mapping health schedule is removed on upgrade (the
catalogue drift check, schedule "drift: catalogue", replaces it)."""
from django.db import migrations

RETIRED_SCHEDULES = ["mappings health check"]


def remove_retired_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=RETIRED_SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0021_payouts_more"), ("django_q", "0018_task_success_index")]

    operations = [
        migrations.RunPython(remove_retired_schedules, migrations.RunPython.noop),
    ]
