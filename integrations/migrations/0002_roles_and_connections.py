"""Roles as Django groups, and the two demo storefront connections the defaults point at."""
from django.db import migrations

ROLES = ("ops", "finance", "ecommerce", "admin")


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    StorefrontConnection = apps.get_model("integrations", "StorefrontConnection")
    StorefrontConnection.objects.get_or_create(code="shopify", defaults={"platform": "shopify", "name": "Shopify store"})
    StorefrontConnection.objects.get_or_create(
        code="commercetools", defaults={"platform": "commercetools", "name": "commercetools shop"}
    )


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
