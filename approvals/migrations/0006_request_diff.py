from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0005_fill_request_origin'),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalrequest',
            name='diff',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='approvalrequest',
            name='diff_truncated',
            field=models.BooleanField(default=False),
        ),
    ]
