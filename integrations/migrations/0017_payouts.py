"""Payouts, balance transactions, settlement files and their reconciliation."""
import django.db.models.deletion
import django.utils.timezone
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0016_planner_replenishment"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HistoricalPayout',
            fields=[
                ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                ('source', models.CharField(choices=[('shopify_payments', 'Shopify Payments'), ('settlement_file', 'Settlement file')], max_length=20)),
                ('external_id', models.CharField(max_length=200)),
                ('status', models.CharField(choices=[('imported', 'Imported'), ('matched', 'Matched'), ('variance', 'Variance'), ('approved', 'Approved'), ('posted', 'Posted'), ('rejected', 'Rejected'), ('sent_back', 'Sent back')], db_index=True, default='imported', max_length=20)),
                ('currency', models.CharField(max_length=3)),
                ('amount_minor', models.BigIntegerField()),
                ('gross_minor', models.BigIntegerField(default=0)),
                ('fee_minor', models.BigIntegerField(default=0)),
                ('payout_date', models.DateField(db_index=True)),
                ('period', models.DateField(db_index=True)),
                ('imported_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('matched_at', models.DateTimeField(blank=True, null=True)),
                ('test', models.BooleanField(default=False)),
                ('approved_at', models.DateTimeField(blank=True, null=True)),
                ('decision_note', models.TextField(blank=True)),
                ('posted_at', models.DateTimeField(blank=True, null=True)),
                ('journal_reference', models.CharField(blank=True, max_length=200)),
                ('history_id', models.AutoField(primary_key=True, serialize=False)),
                ('history_date', models.DateTimeField(db_index=True)),
                ('history_change_reason', models.CharField(max_length=100, null=True)),
                ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                ('approved_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('connection', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='integrations.connection')),
                ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('prepared_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'historical payout',
                'verbose_name_plural': 'historical payouts',
                'ordering': ('-history_date', '-history_id'),
                'get_latest_by': ('history_date', 'history_id'),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name='Payout',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.CharField(choices=[('shopify_payments', 'Shopify Payments'), ('settlement_file', 'Settlement file')], max_length=20)),
                ('external_id', models.CharField(max_length=200)),
                ('status', models.CharField(choices=[('imported', 'Imported'), ('matched', 'Matched'), ('variance', 'Variance'), ('approved', 'Approved'), ('posted', 'Posted'), ('rejected', 'Rejected'), ('sent_back', 'Sent back')], db_index=True, default='imported', max_length=20)),
                ('currency', models.CharField(max_length=3)),
                ('amount_minor', models.BigIntegerField()),
                ('gross_minor', models.BigIntegerField(default=0)),
                ('fee_minor', models.BigIntegerField(default=0)),
                ('payout_date', models.DateField(db_index=True)),
                ('period', models.DateField(db_index=True)),
                ('imported_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('matched_at', models.DateTimeField(blank=True, null=True)),
                ('test', models.BooleanField(default=False)),
                ('approved_at', models.DateTimeField(blank=True, null=True)),
                ('decision_note', models.TextField(blank=True)),
                ('posted_at', models.DateTimeField(blank=True, null=True)),
                ('journal_reference', models.CharField(blank=True, max_length=200)),
                ('approved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='payouts', to='integrations.connection')),
                ('prepared_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-payout_date', '-id'],
            },
        ),
        migrations.CreateModel(
            name='BalanceTransaction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('external_id', models.CharField(max_length=200)),
                ('type', models.CharField(choices=[('charge', 'Charge'), ('refund', 'Refund'), ('dispute', 'Dispute / chargeback'), ('dispute_reversal', 'Dispute reversal'), ('reserve', 'Reserve'), ('reserve_release', 'Reserve release'), ('adjustment', 'Adjustment'), ('payout', 'Payout'), ('currency_conversion', 'Currency conversion'), ('fee', 'Fee'), ('other', 'Other')], db_index=True, max_length=30)),
                ('source_type', models.CharField(blank=True, max_length=60)),
                ('source_id', models.CharField(blank=True, max_length=200)),
                ('source_order_transaction_id', models.CharField(blank=True, max_length=200)),
                ('storefront_order_id', models.CharField(blank=True, db_index=True, max_length=200)),
                ('amount_minor', models.BigIntegerField()),
                ('fee_minor', models.BigIntegerField(default=0)),
                ('net_minor', models.BigIntegerField()),
                ('currency', models.CharField(max_length=3)),
                ('adjustment_reason', models.CharField(blank=True, max_length=100)),
                ('test', models.BooleanField(default=False)),
                ('transaction_date', models.DateTimeField(blank=True, null=True)),
                ('raw', models.JSONField(blank=True, default=dict)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='balance_transactions', to='integrations.connection')),
                ('payout', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='balance_transactions', to='integrations.payout')),
            ],
            options={
                'ordering': ['transaction_date', 'id'],
            },
        ),
        migrations.CreateModel(
            name='ReconciliationLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('matched', 'Matched'), ('unmatched', 'Unmatched')], db_index=True, max_length=20)),
                ('difference_class', models.CharField(choices=[('none', 'No difference'), ('missing_erp_posting', 'Missing ERP posting'), ('amount_mismatch', 'Amount mismatch'), ('fee_mismatch', 'Fee mismatch'), ('rounding', 'Rounding'), ('currency_conversion', 'Currency conversion'), ('unknown_order', 'Unknown order'), ('test_transaction', 'Test transaction')], db_index=True, default='none', max_length=30)),
                ('expected_minor', models.BigIntegerField(blank=True, null=True)),
                ('actual_minor', models.BigIntegerField(default=0)),
                ('variance_minor', models.BigIntegerField(default=0)),
                ('erp_document', models.CharField(blank=True, max_length=100)),
                ('note', models.TextField(blank=True)),
                ('balance_transaction', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reconciliation_lines', to='integrations.balancetransaction')),
                ('order', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='integrations.orderlink')),
                ('payout', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='integrations.payout')),
                ('refund', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='integrations.refund')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='SettlementFile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=255)),
                ('layout', models.CharField(choices=[('stripe_payout_reconciliation', 'Stripe payout reconciliation (itemized)'), ('adyen_settlement_details', 'Adyen settlement details')], max_length=40)),
                ('uploaded_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('status', models.CharField(choices=[('imported', 'Imported'), ('failed', 'Failed')], db_index=True, default='imported', max_length=20)),
                ('rows', models.PositiveIntegerField(default=0)),
                ('error', models.TextField(blank=True)),
                ('sha256', models.CharField(max_length=64)),
                ('connection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='settlement_files', to='integrations.connection')),
                ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-uploaded_at', '-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='payout',
            constraint=models.UniqueConstraint(fields=('connection', 'external_id'), name='uniq_payout'),
        ),
        migrations.AddConstraint(
            model_name='balancetransaction',
            constraint=models.UniqueConstraint(fields=('connection', 'external_id'), name='uniq_balance_transaction'),
        ),
        migrations.AddConstraint(
            model_name='settlementfile',
            constraint=models.UniqueConstraint(fields=('connection', 'sha256'), name='uniq_settlement_file'),
        ),
    ]
