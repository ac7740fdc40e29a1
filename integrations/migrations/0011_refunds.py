"""Storefront refunds and the credit memos made of them."""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0010_fulfilment")]

    operations = [
        migrations.CreateModel(
            name='Refund',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('storefront_refund_id', models.CharField(max_length=200)),
                ('storefront_order_id', models.CharField(db_index=True, max_length=200)),
                ('state', models.CharField(choices=[('received', 'Received'), ('waiting_order', 'Waiting for its order to post'), ('posting', 'Posting the credit memo'), ('posted', 'Credit memo posted'), ('held', 'Needs attention')], db_index=True, default='received', max_length=20)),
                ('currency', models.CharField(blank=True, max_length=3)),
                ('amount_minor', models.BigIntegerField(blank=True, null=True)),
                ('credit_memo_id', models.CharField(blank=True, max_length=100)),
                ('credit_memo_total_minor', models.BigIntegerField(blank=True, null=True)),
                ('restock', models.BooleanField(default=False)),
                ('payload', models.JSONField(blank=True, default=dict)),
                ('erp_payload', models.JSONField(blank=True, default=dict)),
                ('last_error', models.TextField(blank=True)),
                ('posting_started_at', models.DateTimeField(blank=True, null=True)),
                ('posted_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='refunds', to='integrations.connection')),
                ('event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='integrations.inboundevent')),
                ('order', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='refunds', to='integrations.orderlink')),
            ],
            options={
                'ordering': ['created_at', 'id'],
                'constraints': [models.UniqueConstraint(fields=('connection', 'storefront_refund_id'), name='uniq_storefront_refund')],
            },
        ),
    ]
