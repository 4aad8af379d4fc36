# Step 3 of 3: every goal now points at a registered repository and an agent profile (0006): the typed path,
# the free-form agent settings and the all-or-nothing network switch go.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("goals", "0006_register_repositories_and_profiles")]

    operations = [
        migrations.RemoveField(
            model_name='goal',
            name='agent',
        ),
        migrations.RemoveField(
            model_name='goal',
            name='agent_settings',
        ),
        migrations.RemoveField(
            model_name='goal',
            name='allow_network',
        ),
        migrations.RemoveField(
            model_name='goal',
            name='repo_path',
        ),
        migrations.AlterField(
            model_name="goal",
            name="repository",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="goals", to="goals.repository"
            ),
        ),
        migrations.AlterField(
            model_name="goal",
            name="agent_profile",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="goals",
                to="goals.agentprofile",
                verbose_name="agent",
            ),
        ),
    ]
