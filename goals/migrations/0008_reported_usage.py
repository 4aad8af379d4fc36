
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('goals', '0007_drop_typed_repository_and_agent'),
    ]

    operations = [
        migrations.AddField(
            model_name='goal',
            name='reported_paths',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='goal',
            name='reported_tokens',
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
