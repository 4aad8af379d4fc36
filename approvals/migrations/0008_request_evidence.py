from django.db import migrations, models


class Migration(migrations.Migration):
    """A gateway request keeps the checks the agent reported before it asked (filled by 0009)."""

    dependencies = [
        ("approvals", "0007_move_gateway_diff"),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalrequest',
            name='evidence',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
