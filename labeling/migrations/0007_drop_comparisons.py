from django.db import migrations


class Migration(migrations.Migration):
    """Comparisons live on as judgments (0006); the pair-only schema goes."""

    dependencies = [
        ('labeling', '0006_comparisons_to_judgments'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='turn',
            name='left_slot_0_or_1',
        ),
        migrations.RemoveField(
            model_name='campaign',
            name='mode',
        ),
        migrations.RemoveField(
            model_name='turn',
            name='left_slot',
        ),
        migrations.DeleteModel(
            name='Comparison',
        ),
    ]
