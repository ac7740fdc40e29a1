"""Inventory Planner replenishment (purchase-order recommendations and approvals)."""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0015_planner_feeds"), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name='ReceiptCursor',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('erp', models.CharField(max_length=200, unique=True)),
                ('cursor', models.TextField(blank=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name='Recommendation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('planner_id', models.CharField(max_length=64)),
                ('planner_reference', models.CharField(blank=True, max_length=100)),
                ('planner_status', models.CharField(blank=True, max_length=20)),
                ('planner_modified', models.CharField(blank=True, max_length=40)),
                ('vendor', models.CharField(blank=True, max_length=200)),
                ('warehouse', models.CharField(max_length=200)),
                ('depot', models.CharField(blank=True, max_length=50)),
                ('currency', models.CharField(default='GBP', max_length=3)),
                ('expected_date', models.CharField(blank=True, max_length=40)),
                ('urgency', models.CharField(choices=[('critical', 'Out of stock'), ('high', 'Sells out before delivery'), ('medium', 'Sells out before the next review'), ('low', 'Covered')], db_index=True, default='low', max_length=10)),
                ('urgency_rank', models.PositiveSmallIntegerField(default=3)),
                ('days_of_stock', models.IntegerField(blank=True, null=True)),
                ('status', models.CharField(choices=[('pending', 'To review'), ('approved', 'Approved (raising in the ERP)'), ('ordered', 'Raised in the ERP'), ('sent', 'Ordered and marked in the planner'), ('partly_received', 'Partly received'), ('received', 'Received'), ('rejected', 'Rejected')], db_index=True, default='pending', max_length=20)),
                ('erp_po_id', models.CharField(blank=True, max_length=100, verbose_name='ERP purchase order')),
                ('erp_po_status', models.CharField(blank=True, max_length=30)),
                ('erp_modified', models.CharField(blank=True, max_length=40)),
                ('planner_receipts_told', models.JSONField(blank=True, default=dict)),
                ('planner_receipts_due', models.BooleanField(default=False)),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('reject_reason', models.CharField(blank=True, max_length=500)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='recommendations', to='integrations.connection')),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['urgency_rank', 'expected_date', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='RecommendationLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('planner_item_id', models.CharField(max_length=64)),
                ('variant_id', models.CharField(blank=True, max_length=100)),
                ('sku', models.CharField(max_length=100, verbose_name='planner SKU')),
                ('title', models.CharField(blank=True, max_length=200)),
                ('erp_item_code', models.CharField(blank=True, max_length=100)),
                ('quantity_recommended', models.PositiveIntegerField(default=0)),
                ('quantity_approved', models.PositiveIntegerField(default=0)),
                ('quantity_received', models.PositiveIntegerField(default=0)),
                ('unit_cost', models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                ('lead_time', models.IntegerField(blank=True, null=True)),
                ('review_period', models.IntegerField(blank=True, null=True)),
                ('oos', models.IntegerField(blank=True, null=True)),
                ('recommendation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='integrations.recommendation')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='PlannerVariant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('variant_id', models.CharField(max_length=100)),
                ('sku', models.CharField(db_index=True, max_length=100)),
                ('warehouse', models.CharField(blank=True, max_length=200)),
                ('lead_time', models.IntegerField(blank=True, null=True)),
                ('review_period', models.IntegerField(blank=True, null=True)),
                ('replenishment', models.IntegerField(blank=True, null=True)),
                ('oos', models.IntegerField(blank=True, null=True)),
                ('vendor', models.CharField(blank=True, max_length=200)),
                ('cost_price', models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                ('erp_known', models.BooleanField(default=True)),
                ('fetched_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='planner_variants', to='integrations.connection')),
            ],
            options={
                'ordering': ['sku', 'warehouse'],
                'constraints': [models.UniqueConstraint(fields=('connection', 'variant_id'), name='uniq_planner_variant')],
            },
        ),
        migrations.AddIndex(
            model_name='recommendation',
            index=models.Index(fields=['status', 'urgency_rank'], name='recommendation_queue_idx'),
        ),
        migrations.AddConstraint(
            model_name='recommendation',
            constraint=models.UniqueConstraint(fields=('connection', 'planner_id'), name='uniq_recommendation'),
        ),
        migrations.AddConstraint(
            model_name='recommendationline',
            constraint=models.UniqueConstraint(fields=('recommendation', 'planner_item_id'), name='uniq_recommendation_line'),
        ),
    ]
