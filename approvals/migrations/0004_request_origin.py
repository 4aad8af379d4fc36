from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0003_gateway'),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalrequest',
            name='origin',
            field=models.CharField(choices=[('loop', 'A managed loop step'), ('gateway', 'An agent running elsewhere (a tool call)'), ('stall', 'A stall'), ('budget', 'A budget')], db_index=True, default='loop', max_length=20),
            preserve_default=False,
        ),
    ]
