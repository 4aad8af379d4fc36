"""Reading shell commands (gateway/shell.py): what a command writes, in every form an agent sends it, and the
commands a protected goal must ask about because nobody can read what they write."""

import functools
import shlex
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.models import ApprovalRequest
from gateway import calls as gateway
from gateway import shell
from gateway.calls import ALLOW, ASK, DENY, ToolCall
from gateway.models import AlwaysAllowRule, RuleKind

# --- the parser (pure) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "written"),
    [
        pytest.param("/bin/bash -lc 'echo x > secrets/key'", ["secrets/key"], id="bash-lc-as-one-string"),
        pytest.param('sh -c "tee -a .env < /dev/null"', [".env"], id="sh-c-double-quoted"),
        pytest.param("bash -c 'bash -c \"touch deep\"'", ["deep"], id="bash-c-inside-bash-c"),
        pytest.param("cat > secrets/key <<'EOF'\n$(not run)\nEOF\n", ["secrets/key"], id="heredoc-quoted-delimiter"),
        pytest.param("cat <<EOF > out\n$(rm gone)\nEOF\n", ["out", "gone"], id="heredoc-body-substitution-runs"),
        pytest.param("cd sub && cp a ../secrets/key", ["sub/../secrets/key"], id="cd-moves-later-paths"),
        pytest.param("(cd sub; touch q); touch r", ["sub/q", "r"], id="cd-in-a-subshell-stays-there"),
        pytest.param("cd /tmp && rm x", ["/tmp/x"], id="cd-to-an-absolute-directory"),
        pytest.param("FOO=1 BAR=2 touch y", ["y"], id="env-prefix"),
        pytest.param("sudo -u bob env A=1 command sed -i.bak -e s/a/b/ f g", ["f", "g"], id="wrappers-and-sed-e"),
        pytest.param("nice -n 5 timeout 10 rm z", ["z"], id="nice-and-timeout"),
        pytest.param("time rm x", ["x"], id="time"),
        pytest.param("echo $(rm -rf x) `touch y`", ["x", "y"], id="command-substitutions-run"),
        pytest.param("echo x | tee >(cat > z)", ["z"], id="process-substitution"),
        pytest.param("rm >/dev/null secrets/key", ["secrets/key"], id="argument-after-a-redirection"),
        pytest.param("dd if=/dev/zero of=secrets/k bs=1", ["secrets/k"], id="dd-of"),
        pytest.param("truncate -s 0 f", ["f"], id="truncate-option-value-is-no-path"),
        pytest.param("touch -d now f", ["f"], id="touch-option-value-is-no-path"),
        pytest.param("install -m 644 a dst", ["dst"], id="install"),
        pytest.param("cp -t dir a b", ["dir/a", "dir/b"], id="cp-target-directory"),
        pytest.param("cp a b .", ["./a", "./b"], id="cp-into-the-current-directory"),
        pytest.param("mv a.py b.py", ["a.py", "b.py"], id="mv-both"),
        pytest.param("perl -pi -e 's/a/b/' f", ["f"], id="perl-in-place"),
        pytest.param("git checkout -- .env", [".env"], id="git-checkout-dashdash"),
        pytest.param("git checkout HEAD~1 -- a b", ["a", "b"], id="git-checkout-rev-dashdash"),
        pytest.param("git restore -s HEAD x", ["x"], id="git-restore"),
        pytest.param("git mv a b", ["a", "b"], id="git-mv"),
        pytest.param("eval 'echo x > e'", ["e"], id="eval-of-a-literal"),
        pytest.param("[[ -f x ]] && rm x", ["x"], id="double-bracket-test"),
        pytest.param("case a in b) rm y;; esac", ["y"], id="case"),
        pytest.param("a=$((1+2)); echo $a >> q", ["q"], id="arithmetic"),
        pytest.param("f() { rm x; }; f", ["x"], id="function-body"),
        pytest.param("echo x >& f; cat f &> g; exec > log", ["f", "g", "log"], id="every-redirection-form"),
        pytest.param("echo x >&2 2>&1", [], id="fd-duplication-writes-no-file"),
        pytest.param("chmod +x run.sh", ["run.sh"], id="chmod-mode-is-no-path"),
        pytest.param("ls | xargs grep x", [], id="xargs-of-a-reader"),
        pytest.param("python -c 'print(1)'", [], id="inline-code-that-only-prints"),
        pytest.param("bash script.sh", [], id="a-script-file-writes-nothing-visible"),
    ],
)
def test_the_parser_names_what_every_form_writes(command, written):
    reading = shell.read_command(command)
    assert list(reading.writes) == written and reading.readable, reading.unreadable


@pytest.mark.parametrize(
    ("command", "why"),
    [
        pytest.param("echo 'unterminated", "not valid shell syntax", id="syntax-error"),
        pytest.param("echo x > $OUT", "expansion", id="redirection-to-a-variable"),
        pytest.param('rm "$f"', "expansion", id="rm-of-a-variable"),
        pytest.param("$CMD secrets/key", "command named by an expansion", id="command-named-by-a-variable"),
        pytest.param('cd "$D" && rm key', "directory it cannot know", id="cd-to-a-variable"),
        pytest.param("cd - && rm key", "directory it cannot know", id="cd-dash"),
        pytest.param('eval "$X"', "eval", id="eval-of-a-variable"),
        pytest.param('bash -c "$S"', "bash -c", id="bash-c-of-a-variable"),
        pytest.param("python3 -c \"open('secrets/key','w')\"", "inline code", id="python-c-open"),
        pytest.param("node -e \"require('fs').writeFileSync('.env','x')\"", "inline code", id="node-e-fs"),
        pytest.param("git apply x.patch", "git apply", id="git-apply"),
        pytest.param("git checkout main", "switch branches", id="git-checkout-branch"),
        pytest.param("git reset --hard", "git reset", id="git-reset-hard"),
        pytest.param("git stash", "git stash", id="git-stash"),
        pytest.param("git -C ../other rm x", "another directory", id="git-C"),
        pytest.param("env -C sub rm x", "another directory", id="env-C"),
        pytest.param("xargs rm < list", "xargs", id="xargs-rm"),
        pytest.param("find . -delete", "find", id="find-delete"),
        pytest.param("find . -exec rm {} +", "find", id="find-exec-rm"),
        pytest.param("patch -p1 < x.diff", "patch", id="patch"),
        pytest.param("tar xf a.tar", "tar", id="tar-extract"),
        pytest.param(
            functools.reduce(lambda c, _: "bash -c " + shlex.quote(c), range(12), "touch x"),
            "deeply",
            id="nested-too-deeply",
        ),
    ],
)
def test_what_the_parser_cannot_read_it_says(command, why):
    reading = shell.read_command(command)
    assert not reading.readable and why in reading.unreadable


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("npm test -- --watch=false", ["npm", "test", "--", "--watch=false"]),
        ("npm 'test'", ["npm", "test"]),
        ("npm test && rm -rf /", None),
        ("echo $(cat ~/.ssh/id_rsa)", None),
        ("FOO=1 npm test", None),
        ("npm test > f", None),
        ("ls *.py", None),
        ("npm test\nrm -rf /", None),
        ("npm te\\st", None),
        ("", None),
    ],
)
def test_only_a_plain_command_has_simple_words(command, words):
    assert shell.simple_words(command) == words


WRITERS = [
    "echo x > {p}",
    "echo x >> {p}",
    "tee -a {p}",
    "rm -f {p}",
    "touch {p}",
    "truncate -s 0 {p}",
    "cp a {p}",
    "mv {p} b",
    "install a {p}",
    "sed -i s/a/b/ {p}",
    "dd of={p}",
    "git rm -q {p}",
    "git checkout -- {p}",
    "cat > {p} <<'EOF'\nx\nEOF\n",
]
PREFIXES = ["", "FOO=1 ", "sudo ", "env A=1 ", "command ", "nohup ", "nice -n 1 ", "timeout 5 ", "sudo env "]
WRAPS = [
    "{c}",
    "bash -lc {q}",
    "/bin/sh -c {q}",
    "true && {c}",
    "false || {c}",
    "( {c} )",
    "{{ {c}; }}",
    "if true; then {c}; fi",
    "echo $( {c} )",
    "eval {q}",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(WRITERS), st.sampled_from(PREFIXES), st.sampled_from(WRAPS))
def test_a_write_is_found_through_any_prefix_and_wrapping(writer, prefix, wrap):
    inner = prefix + writer.format(p="secrets/key")
    command = wrap.format(c=inner, q=shlex.quote(inner))
    assert "secrets/key" in shell.read_command(command).writes, command


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_or_said_unreadable_never_a_crash(command):
    reading = shell.read_command(command)
    assert isinstance(reading.writes, tuple) and isinstance(reading.unreadable, str)


def test_threads_parsing_at_once_each_get_their_own_answer():
    """The waits judge calls in worker threads: a parser shared between them would mix (or crash) their trees."""
    wrong: list = []

    def parse_many(number: int) -> None:
        for index in range(300):
            reading = shell.read_command(f"cd sub{number} && echo {index} > f{index} && bash -lc 'rm x{index}'")
            if reading.writes != (f"sub{number}/f{index}", f"sub{number}/x{index}"):
                wrong.append(reading)

    threads = [threading.Thread(target=parse_many, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


# --- on a goal with protected paths: denied, or asked when unreadable --------------------------------------------


@pytest.fixture
def protected(running):
    running.protected_paths = ["secrets/**", ".env"]
    running.save()
    return running


def shell_call(repo, command, tool="Bash", agent="claude"):
    return ToolCall(tool, {"command": command}, cwd=str(repo), agent=agent)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["/bin/bash", "-lc", "echo x > .env"], id="app-server-v2-argv"),
        pytest.param(["bash", "-c", "cd sub && echo x > ../.env"], id="argv-with-cd"),
        pytest.param(["env", "FOO=1", "/bin/bash", "-lc", "echo x > .env"], id="argv-through-env"),
        pytest.param("/bin/bash -lc 'echo x > secrets/key'", id="bash-lc-string"),
        pytest.param("cat > secrets/key <<'EOF'\nk\nEOF", id="heredoc"),
        pytest.param("cat > .env <<EOF\nk\nEOF", id="heredoc-unquoted"),
        pytest.param("cd sub && cp a ../secrets/key", id="cd-then-cp"),
        pytest.param("cd sub && cd .. && echo x > .env", id="cd-there-and-back"),
        pytest.param("FOO=1 tee -a .env < /dev/null", id="env-prefix-tee-append"),
        pytest.param("sudo sed -i s/a/b/ secrets/key", id="sudo-sed-in-place"),
        pytest.param("command cp app.py secrets/", id="cp-into-protected-directory"),
        pytest.param("mv secrets/key elsewhere", id="mv-out"),
        pytest.param("rm -rf secrets", id="rm-directory"),
        pytest.param("rm secrets/*", id="rm-glob"),
        pytest.param("install app.py .env", id="install"),
        pytest.param("touch .env", id="touch"),
        pytest.param("truncate -s 0 secrets/key", id="truncate"),
        pytest.param("dd if=/dev/zero of=secrets/key count=1", id="dd"),
        pytest.param("git rm secrets/key", id="git-rm"),
        pytest.param("git mv .env env.bak", id="git-mv"),
        pytest.param("git checkout HEAD -- .env", id="git-checkout-path"),
        pytest.param("echo $(echo x > .env)", id="inside-a-substitution"),
        pytest.param("rm >/dev/null secrets/key", id="hidden-after-a-redirection"),
        pytest.param("eval 'touch .env'", id="eval"),
    ],
)
def test_every_form_writing_a_protected_path_is_denied(protected, git_repo, command):
    (git_repo / "sub").mkdir()
    (git_repo / "secrets").mkdir()
    (git_repo / "secrets" / "key").write_text("k")
    tool = "commandExecution" if isinstance(command, list) else "Bash"
    outcome = gateway.propose(protected, shell_call(git_repo, command, tool=tool, agent="codex"))
    assert outcome.verdict == DENY and "Protected path changed" in outcome.reason, outcome.reason
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("python3 -c \"open('secrets/key','w').write('x')\"", id="python-c"),
        pytest.param('echo x > "$TARGET"', id="redirection-to-a-variable"),
        pytest.param('cd "$D" && echo x > key', id="cd-to-a-variable"),
        pytest.param('eval "$SCRIPT"', id="eval-of-a-variable"),
        pytest.param(["/bin/bash", "-lc", "echo 'unterminated"], id="argv-script-that-is-no-shell"),
        pytest.param("git checkout main", id="git-checkout-branch"),
        pytest.param("git apply fix.patch", id="git-apply"),
        pytest.param("ls | xargs rm", id="xargs-rm"),
    ],
)
def test_a_command_nobody_can_read_asks_on_a_goal_with_protected_paths(protected, git_repo, command):
    tool = "commandExecution" if isinstance(command, list) else "Bash"
    outcome = gateway.propose(protected, shell_call(git_repo, command, tool=tool))
    assert outcome.verdict == ASK, outcome.reason
    assert "Cannot tell which files the command writes" in outcome.reason
    assert outcome.request.details["command"]


def test_an_unreadable_command_goes_on_without_protected_paths(running, git_repo):
    running.protected_paths = []
    running.save()
    assert gateway.propose(running, shell_call(git_repo, "git checkout main")).verdict == ALLOW


def test_an_always_allow_rule_never_covers_an_unreadable_command(protected, git_repo, owner):
    AlwaysAllowRule.objects.create(goal=protected, kind=RuleKind.COMMAND_PREFIX, value="git checkout", created_by=owner)
    assert gateway.propose(protected, shell_call(git_repo, "git checkout main")).verdict == ASK


def test_a_readable_command_writing_elsewhere_is_allowed(protected, git_repo):
    outcome = gateway.propose(protected, shell_call(git_repo, "cd sub && echo x > notes.txt && pytest -q"))
    assert outcome.verdict == ALLOW and outcome.call.paths == ["sub/notes.txt"]
