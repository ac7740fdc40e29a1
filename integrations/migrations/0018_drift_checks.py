"""Drift-check runs and findings."""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0017_payouts"),
        ("exceptions_queue", "0004_labels_and_bulk_refusals"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DriftRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('check_code', models.CharField(db_index=True, max_length=60, verbose_name='check')),
                ('trigger', models.CharField(choices=[('schedule', 'Scheduled'), ('manual', 'Run by hand')], default='schedule', max_length=20, verbose_name='trigger')),
                ('status', models.CharField(choices=[('running', 'Running'), ('ok', 'No gaps'), ('findings', 'Gaps found'), ('failed', 'Failed')], default='running', max_length=20, verbose_name='status')),
                ('started_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='started')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                ('duration_ms', models.PositiveIntegerField(blank=True, null=True, verbose_name='duration (ms)')),
                ('found', models.PositiveIntegerField(default=0, verbose_name='gaps found')),
                ('raised', models.PositiveIntegerField(default=0, verbose_name='new gaps')),
                ('updated', models.PositiveIntegerField(default=0, verbose_name='gaps seen again')),
                ('resolved', models.PositiveIntegerField(default=0, verbose_name='gaps closed')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('summary', models.JSONField(blank=True, default=dict, verbose_name='summary')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='run by')),
            ],
            options={
                'verbose_name': 'drift check run',
                'ordering': ['-started_at', '-pk'],
            },
        ),
        migrations.CreateModel(
            name='DriftFinding',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('check_code', models.CharField(max_length=60, verbose_name='check')),
                ('key', models.CharField(max_length=250, verbose_name='gap')),
                ('subject_type', models.CharField(blank=True, max_length=30, verbose_name='subject type')),
                ('subject_id', models.CharField(blank=True, max_length=200, verbose_name='subject')),
                ('message', models.TextField(verbose_name='message')),
                ('detail', models.JSONField(blank=True, default=dict, verbose_name='detail')),
                ('fingerprint', models.CharField(blank=True, max_length=40, verbose_name='as last told')),
                ('first_seen', models.DateTimeField(default=django.utils.timezone.now, verbose_name='first seen')),
                ('last_seen', models.DateTimeField(default=django.utils.timezone.now, verbose_name='last seen')),
                ('resolved_at', models.DateTimeField(blank=True, null=True, verbose_name='resolved')),
                ('connection', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='drift_findings', to='integrations.connection')),
                ('exception', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='drift_findings', to='exceptions_queue.exceptionrecord')),
                ('last_run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='findings', to='integrations.driftrun')),
            ],
            options={
                'verbose_name': 'drift finding',
                'ordering': ['-last_seen', '-pk'],
            },
        ),
        migrations.AddIndex(
            model_name='driftrun',
            index=models.Index(fields=['check_code', '-started_at'], name='drift_run_check_started'),
        ),
        migrations.AddConstraint(
            model_name='driftrun',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'running')), fields=('check_code',), name='drift_one_running_run'),
        ),
        migrations.AddIndex(
            model_name='driftfinding',
            index=models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['check_code', 'last_seen'], name='drift_finding_open'),
        ),
        migrations.AddConstraint(
            model_name='driftfinding',
            constraint=models.UniqueConstraint(fields=('check_code', 'key'), name='drift_finding_uniq_key'),
        ),
    ]
