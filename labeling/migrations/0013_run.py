"""One run model: training and evaluation runs (and the new distillation and export runs)
become rows of ``Run``. Training runs keep their ids, so the models they made still name
them; evaluation runs are numbered after them, their benchmark kept in their config."""

import django.db.models.deletion
from django.conf import settings
from django.core.management.color import no_style
from django.db import migrations, models


COMMON = (
    "status",
    "config",
    "progress",
    "metrics",
    "error",
    "requested_by_id",
    "created_at",
    "started_at",
    "finished_at",
)


def copy_runs(apps, schema_editor):
    TrainingRun = apps.get_model("labeling", "TrainingRun")
    EvaluationRun = apps.get_model("labeling", "EvaluationRun")
    Run = apps.get_model("labeling", "Run")
    for old in TrainingRun.objects.order_by("pk"):
        run = Run.objects.create(
            pk=old.pk, kind="preference", **{f: getattr(old, f) for f in COMMON}
        )
        Run.objects.filter(pk=run.pk).update(created_at=old.created_at)  # not "now"
    # Rows inserted with explicit ids leave PostgreSQL's sequence behind: move it on.
    sql = schema_editor.connection.ops.sequence_reset_sql(no_style(), [Run])
    with schema_editor.connection.cursor() as cursor:
        for statement in sql:
            cursor.execute(statement)
    for old in EvaluationRun.objects.order_by("pk"):
        fields = {f: getattr(old, f) for f in COMMON}
        fields["config"] = {**old.config, "benchmark": old.benchmark}
        run = Run.objects.create(kind="evaluation", model_version_id=old.model_version_id, **fields)
        Run.objects.filter(pk=run.pk).update(created_at=old.created_at)


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0012_report_once_disagreement_spread'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Run',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('preference', 'Preference model training'), ('evaluation', 'HHH evaluation'), ('distillation', 'Context distillation'), ('export', 'Export')], max_length=20)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='queued', max_length=20)),
                ('config', models.JSONField(blank=True, default=dict, help_text='What the run was asked to do.')),
                ('progress', models.FloatField(default=0.0, help_text='0 to 1.')),
                ('metrics', models.JSONField(blank=True, default=dict)),
                ('output', models.CharField(blank=True, help_text='What it made: a model directory or an export file.', max_length=500)),
                ('error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('model_version', models.ForeignKey(blank=True, help_text='Evaluations: the model version evaluated.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='labeling.modelversion')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-pk'],
            },
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.CheckConstraint(condition=models.Q(('progress__gte', 0), ('progress__lte', 1)), name='run_progress_0_1'),
        ),
        migrations.RunPython(copy_runs, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='modelversion',
            name='training_run',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='produced', to='labeling.run'),
        ),
        migrations.DeleteModel(
            name='EvaluationRun',
        ),
        migrations.DeleteModel(
            name='TrainingRun',
        ),
    ]
