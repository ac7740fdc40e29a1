"""Roles as Django groups. (Connections are not created here: migrations create no demo data; the
demo seed and `manage.py connections_add` create them.)"""
from django.db import migrations

ROLES = ("ops", "finance", "ecommerce", "admin")


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
