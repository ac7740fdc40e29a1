"""commercetools deliveries applied in resource order (sequence numbers per resource)."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0013_progress_indexes")]

    operations = []
