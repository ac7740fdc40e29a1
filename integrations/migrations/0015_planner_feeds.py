"""Inventory Planner demand feeds (files served and uploaded)."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0014_ct_delivery")]

    operations = [
        migrations.CreateModel(
            name='PlannerItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('item_code', models.CharField(max_length=100, unique=True)),
                ('title', models.CharField(blank=True, max_length=300)),
                ('barcode', models.CharField(blank=True, max_length=100)),
                ('currency', models.CharField(blank=True, max_length=3)),
                ('price', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('cost', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('lead_time_days', models.PositiveIntegerField(blank=True, null=True)),
                ('supplier', models.CharField(blank=True, max_length=200)),
                ('removed', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['item_code'],
            },
        ),
        migrations.CreateModel(
            name='FeedRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('snapshot', 'Snapshot (CSV connector)'), ('incremental', 'Incremental (Advanced CSV over SFTP)')], max_length=12)),
                ('status', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('skipped', 'Skipped (quiet hours)')], db_index=True, default='running', max_length=10)),
                ('trigger', models.CharField(default='schedule', max_length=20)),
                ('warehouse', models.CharField(blank=True, max_length=50)),
                ('files', models.JSONField(blank=True, default=list)),
                ('rows', models.PositiveIntegerField(default=0)),
                ('errors', models.JSONField(blank=True, default=list)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('cursor_from', models.DateTimeField(blank=True, null=True)),
                ('cursor_to', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='feed_runs', to='integrations.connection')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='PlannerStock',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('item_code', models.CharField(max_length=100)),
                ('warehouse', models.CharField(max_length=50)),
                ('ats', models.IntegerField(default=0)),
                ('in_transit', models.IntegerField(default=0)),
                ('quality_inspection', models.IntegerField(default=0)),
                ('damaged', models.IntegerField(default=0)),
                ('returned_awaiting_inspection', models.IntegerField(default=0)),
                ('removed', models.BooleanField(default=False)),
                ('updated_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['warehouse', 'item_code'],
                'constraints': [models.UniqueConstraint(fields=('item_code', 'warehouse'), name='uniq_planner_stock')],
            },
        ),
        migrations.CreateModel(
            name='PlannerSalesLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('line_key', models.CharField(max_length=200)),
                ('order_key', models.CharField(max_length=200)),
                ('order_number', models.CharField(blank=True, max_length=100)),
                ('item_code', models.CharField(db_index=True, max_length=100)),
                ('kit_sku', models.CharField(blank=True, max_length=100)),
                ('warehouse', models.CharField(max_length=50)),
                ('storefront_location', models.CharField(blank=True, max_length=200)),
                ('currency', models.CharField(max_length=3)),
                ('quantity', models.IntegerField()),
                ('unit_price', models.DecimalField(decimal_places=4, max_digits=20)),
                ('discount', models.DecimalField(decimal_places=4, default=0, max_digits=20)),
                ('ordered_at', models.DateTimeField()),
                ('ship_country', models.CharField(blank=True, max_length=2)),
                ('ship_region', models.CharField(blank=True, max_length=50)),
                ('discount_codes', models.CharField(blank=True, max_length=300)),
                ('tags', models.CharField(blank=True, max_length=300)),
                ('held', models.BooleanField(default=False)),
                ('removed', models.BooleanField(default=False)),
                ('updated_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('order', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='integrations.orderlink')),
                ('storefront', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='integrations.connection')),
            ],
            options={
                'indexes': [models.Index(fields=['warehouse', 'ordered_at', 'order_key', 'line_key'], name='planner_sales_snapshot_idx')],
                'constraints': [models.UniqueConstraint(fields=('storefront', 'line_key'), name='uniq_planner_sales_line')],
            },
        ),
    ]
