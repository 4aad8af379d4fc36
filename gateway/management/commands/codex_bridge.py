import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway.models import AgentToken
from goalpost_client.codex_bridge import CodexBridge, GatewayClient, GatewayError
from goals.models import Goal


class Command(BaseCommand):
    help = (
        "Run `codex app-server` for a goal: Codex's approval requests go through the goal's gates and the phone. "
        "Put another app-server command after `--` (default: codex app-server)."
    )

    app_server = ("codex", "app-server")

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after `--` is the app-server command, options and all.
        if "--" in argv:
            split = argv.index("--")
            argv, self.app_server = argv[:split], tuple(argv[split + 1 :]) or self.app_server
        super().run_from_argv(argv)

    def add_arguments(self, parser) -> None:
        parser.add_argument("goal_id", type=int)
        parser.add_argument("--url", default=os.environ.get("GOALPOST_URL", ""), help="Goalpost's URL")
        parser.add_argument(
            "--token", default=os.environ.get("GOALPOST_TOKEN", ""), help="an agent token (default: a new one)"
        )
        parser.add_argument("--cwd", default="", help="where Codex works (default: the goal's repository)")
        parser.add_argument("--prompt", default=None, help="the turn's instruction (default: from the goal)")
        parser.add_argument("--approval-policy", default="untrusted", help="Codex's approvalPolicy")
        parser.add_argument("--one-turn", action="store_true", help="one turn, then stop (no done review)")

    def handle(self, *args, goal_id: int, url: str, token: str, cwd: str, prompt, approval_policy, one_turn, **options):
        goal = Goal.objects.filter(pk=goal_id).first()
        if goal is None:
            raise CommandError(f"No goal {goal_id}.")
        if not cwd and goal.repository.is_url:
            raise CommandError(f"{goal.repository.source} is a URL: give --cwd, the clone Codex works in.")
        url = url or f"http://127.0.0.1:{settings.PORT}"
        issued = None
        if not token:
            # A token for this run only, revoked when it ends.
            issued, token = AgentToken.issue(goal, None, name="codex bridge", days=1)
        try:
            client = GatewayClient(url, token, goal.pk)
            bridge = CodexBridge(
                list(self.app_server),
                client,
                cwd=cwd or goal.repository.source,
                prompt=prompt,
                approval_policy=approval_policy,
                one_turn=one_turn,
                log=lambda line: self.stderr.write(f"[goalpost-codex] {line}"),
            )
            code = bridge.run()
        except GatewayError as error:
            raise CommandError(str(error)) from error
        finally:
            if issued is not None:
                issued.revoke()
        if code:
            raise CommandError("The Codex bridge stopped with an error (see above).")
