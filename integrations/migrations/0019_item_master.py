"""Item-master sync runs, price lists and new-SKU gating."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0018_drift_checks")]

    operations = []
