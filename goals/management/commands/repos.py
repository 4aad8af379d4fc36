"""`python manage.py repos add PATH_OR_URL …` registers a repository goals may work on; `repos list` shows them."""

from pathlib import PurePosixPath

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from goals.models import Repository


def _default_name(source: str) -> str:
    tail = source.rstrip("/").rsplit(":", 1)[-1] if not source.startswith("/") else source.rstrip("/")
    name = PurePosixPath(tail).name.removesuffix(".git") or "repository"
    base, number = name[:90], 2
    while Repository.objects.filter(name=name).exists():
        name, number = f"{base}-{number}", number + 1
    return name


class Command(BaseCommand):
    help = "Register the git repositories goals may work on, and list them."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        add = commands.add_parser("add", help="Register a local work tree or an https://, ssh:// or git@host:path URL.")
        add.add_argument("source", help="An absolute path to a git work tree, or a URL")
        add.add_argument("--name", default="", help="A unique name (default: the folder's name)")
        add.add_argument("--user", action="append", default=[], help="A username who may use it (repeatable)")
        add.add_argument("--group", action="append", default=[], help="A group whose members may use it (repeatable)")
        add.add_argument("--branch", default="main", help="The default base branch (default: main)")
        add.add_argument("--disabled", action="store_true", help="Register it disabled (only listed users may use it)")
        commands.add_parser("list", help="Print every registered repository.")

    def handle(self, *args, action: str, **options) -> None:
        if action == "add":
            self.add(**options)
        else:
            self.list()

    def add(self, source: str, name: str, user: list[str], group: list[str], branch: str, disabled: bool, **_) -> None:
        users = get_user_model().objects.filter(username__in=user)
        unknown = sorted(set(user) - {u.get_username() for u in users})
        if unknown:
            raise CommandError(f"No such user: {', '.join(unknown)}.")
        groups = Group.objects.filter(name__in=group)
        unknown = sorted(set(group) - {g.name for g in groups})
        if unknown:
            raise CommandError(f"No such group: {', '.join(unknown)}.")
        repository = Repository(
            name=name.strip() or _default_name(source.strip()),
            source=source,
            default_branch=branch.strip(),
            enabled=not disabled,
        )
        try:
            repository.full_clean()
        except ValidationError as error:
            problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            raise CommandError(f"Not registered: {problems}") from error
        with transaction.atomic():
            repository.save()
            repository.users.set(users)
            repository.groups.set(groups)
        self.stdout.write(f"Registered {repository.name}: {repository.source}")

    def list(self) -> None:
        repositories = Repository.objects.prefetch_related("users", "groups").order_by("name")
        if not repositories:
            self.stdout.write("No repositories registered: add one with `manage.py repos add PATH_OR_URL`.")
            return
        for repository in repositories:
            who = [u.get_username() for u in repository.users.all()] + [
                f"group:{g.name}" for g in repository.groups.all()
            ]
            state = "enabled" if repository.enabled else "disabled"
            nobody = "staff only" if repository.enabled else "nobody"
            forge = f"{repository.forge} {repository.forge_project}".strip() or "-"
            self.stdout.write(
                f"{repository.name}\t{repository.source}\t{state}\t{', '.join(who) or nobody}\t{forge}"
            )
