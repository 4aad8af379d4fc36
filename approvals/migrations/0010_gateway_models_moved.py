from django.db import migrations


class Migration(migrations.Migration):
    """The agent gateway's models moved to the gateway app (gateway 0001 takes them over, tables unchanged):
    approvals forgets them, in its state only."""

    dependencies = [
        ("approvals", "0009_fill_request_evidence"),
        ("gateway", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='agenttoken',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='agenttoken',
                    name='goal',
                ),
                migrations.RemoveField(
                    model_name='gatewaycall',
                    name='token',
                ),
                migrations.RemoveField(
                    model_name='alwaysallowrule',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='alwaysallowrule',
                    name='goal',
                ),
                migrations.RemoveField(
                    model_name='gatewaycall',
                    name='goal',
                ),
                migrations.RemoveField(
                    model_name='gatewaycall',
                    name='request',
                ),
                migrations.RemoveField(
                    model_name='gatewaysettings',
                    name='goal',
                ),
                migrations.DeleteModel(
                    name='AgentReport',
                ),
                migrations.DeleteModel(
                    name='AgentToken',
                ),
                migrations.DeleteModel(
                    name='AlwaysAllowRule',
                ),
                migrations.DeleteModel(
                    name='GatewayCall',
                ),
                migrations.DeleteModel(
                    name='GatewaySettings',
                ),
            ],
            database_operations=[],
        ),
    ]
