"""Item-master sync runs, price lists and new-SKU gating: the ERP's items as last read, each item on each
storefront (with what it still waits for) and the pull / publish runs with their progress."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0018_drift_checks")]

    operations = [
        migrations.CreateModel(
            name='CatalogItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('item_id', models.CharField(max_length=100, verbose_name='ERP item id')),
                ('code', models.CharField(db_index=True, max_length=100, verbose_name='item code')),
                ('product_key', models.CharField(blank=True, db_index=True, max_length=100, verbose_name='product key')),
                ('name', models.CharField(blank=True, max_length=255, verbose_name='name')),
                ('status', models.CharField(choices=[('active', 'Active'), ('retired', 'Retired')], default='active', max_length=20, verbose_name='status')),
                ('data', models.JSONField(blank=True, default=dict, verbose_name='item master data')),
                ('fingerprint', models.CharField(blank=True, max_length=64, verbose_name='fingerprint')),
                ('erp_updated_at', models.DateTimeField(blank=True, null=True, verbose_name='changed in the ERP')),
                ('first_seen', models.DateTimeField(default=django.utils.timezone.now, verbose_name='first seen')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='stored')),
                ('erp_connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='catalog_items', to='integrations.connection', verbose_name='ERP')),
            ],
            options={
                'verbose_name': 'catalogue item',
                'ordering': ['code', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='CatalogPublication',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('waiting', 'Waiting for data'), ('ready', 'Ready to publish'), ('live', 'Live'), ('retired', 'Retired (unpublished)'), ('failed', 'Failed')], default='waiting', max_length=20, verbose_name='state')),
                ('missing', models.JSONField(blank=True, default=list, verbose_name='missing')),
                ('sku', models.CharField(blank=True, max_length=100, verbose_name='storefront SKU')),
                ('storefront_product_id', models.CharField(blank=True, max_length=200, verbose_name='storefront product')),
                ('storefront_variant_id', models.CharField(blank=True, max_length=200, verbose_name='storefront variant')),
                ('published_fingerprint', models.CharField(blank=True, max_length=64, verbose_name='fingerprint pushed')),
                ('last_pushed_at', models.DateTimeField(blank=True, null=True, verbose_name='last pushed')),
                ('last_error', models.TextField(blank=True, verbose_name='last error')),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='failed attempts')),
                ('released_at', models.DateTimeField(blank=True, null=True, verbose_name='released')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='catalog_publications', to='integrations.connection', verbose_name='storefront')),
                ('item', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='publications', to='integrations.catalogitem')),
            ],
            options={
                'verbose_name': 'catalogue publication',
                'ordering': ['item__code', 'connection_id'],
            },
        ),
        migrations.CreateModel(
            name='CatalogRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('pull', 'Pull from the ERP'), ('publish', 'Publish to the storefront'), ('bulk', 'Bulk publish to the storefront')], max_length=20, verbose_name='kind')),
                ('state', models.CharField(choices=[('running', 'Running'), ('waiting', "Waiting for the vendor's bulk job"), ('done', 'Done'), ('failed', 'Failed')], default='running', max_length=20, verbose_name='state')),
                ('cursor', models.CharField(blank=True, max_length=200, verbose_name='cursor')),
                ('total', models.PositiveIntegerField(default=0, verbose_name='total')),
                ('done', models.PositiveIntegerField(default=0, verbose_name='done')),
                ('failed', models.PositiveIntegerField(default=0, verbose_name='failed')),
                ('bulk_handle', models.CharField(blank=True, max_length=200, verbose_name='bulk job')),
                ('keys', models.JSONField(blank=True, default=list, verbose_name='product keys')),
                ('summary', models.JSONField(blank=True, default=dict, verbose_name='summary')),
                ('started_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='started')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='catalog_runs', to='integrations.connection')),
            ],
            options={
                'verbose_name': 'catalogue run',
                'ordering': ['-started_at', '-pk'],
            },
        ),
        migrations.AddIndex(
            model_name='catalogitem',
            index=models.Index(fields=['erp_connection', 'product_key'], name='catalog_item_erp_key'),
        ),
        migrations.AddConstraint(
            model_name='catalogitem',
            constraint=models.UniqueConstraint(fields=('erp_connection', 'item_id'), name='catalog_item_uniq_erp_id'),
        ),
        migrations.AddIndex(
            model_name='catalogpublication',
            index=models.Index(fields=['connection', 'state'], name='catalog_pub_conn_state'),
        ),
        migrations.AddConstraint(
            model_name='catalogpublication',
            constraint=models.UniqueConstraint(fields=('item', 'connection'), name='catalog_pub_uniq_item_conn'),
        ),
        migrations.AddIndex(
            model_name='catalogrun',
            index=models.Index(fields=['connection', 'kind', '-started_at'], name='catalog_run_conn_kind'),
        ),
        migrations.AddConstraint(
            model_name='catalogrun',
            constraint=models.UniqueConstraint(condition=models.Q(('state__in', ('running', 'waiting'))), fields=('connection', 'kind'), name='catalog_run_one_active'),
        ),
    ]
