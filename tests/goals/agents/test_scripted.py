import json
import time

import pytest

from goals.agents.base import AgentError
from goals.agents.scripted import ScriptedAgent
from tests.factories import GREETING_PATCH, make_agent_context, run_git

ESCAPING_SYMLINK_PATCH = """\
diff --git a/exit b/exit
new file mode 120000
--- /dev/null
+++ b/exit
@@ -0,0 +1 @@
+/etc
\\ No newline at end of file
"""


def run(worktree, steps, run_index=0, **changes):
    return ScriptedAgent({"steps": steps}).run_step(make_agent_context(worktree, run_index=run_index, **changes))


def test_it_replays_a_patch_and_reports_what_the_entry_says(worktree):
    entry = {"summary": "Greeting changed", "patch": GREETING_PATCH, "tokens": 1500, "done": True, "bugs": ["README says hello"], "plan": "1. patch"}
    result = run(worktree, [entry])
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert (result.summary, result.tokens, result.done, result.reported_bugs, result.plan) == (
        "Greeting changed", 1500, True, ("README says hello",), "1. patch"
    )
    assert "applied a patch to app.py" in result.log


def test_it_replays_the_entry_of_this_run(worktree):
    steps = [{"summary": "first", "write": {"one.txt": "1"}}, {"summary": "second", "write": {"two.txt": "2"}}]
    result = run(worktree, steps, run_index=1)
    assert result.summary == "second"
    assert (worktree / "two.txt").read_text() == "2"
    assert not (worktree / "one.txt").exists()


def test_it_writes_and_deletes_files(worktree):
    (worktree / "old").mkdir()
    (worktree / "old" / "a.txt").write_text("a")
    result = run(worktree, [{"write": {"src/pkg/new.py": "x = 1\n"}, "delete": ["app.py", "old"]}])
    assert (worktree / "src/pkg/new.py").read_text() == "x = 1\n"
    assert not (worktree / "app.py").exists()
    assert not (worktree / "old").exists()
    assert result.summary == "Scripted step 1"


def test_it_reads_a_patch_file(worktree, tmp_path):
    patch = tmp_path / "greeting.patch"
    patch.write_text(GREETING_PATCH)
    run(worktree, [{"patch_file": str(patch)}])
    assert (worktree / "app.py").read_text() == "print('hi')\n"


def test_it_replays_a_folder_in_name_order(worktree, tmp_path):
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "01-greeting.patch").write_text(GREETING_PATCH)
    (folder / "02-done.json").write_text(json.dumps({"summary": "All done", "done": True, "write": {"NOTES": "ok"}}))
    (folder / "README.txt").write_text("not an entry")
    agent = ScriptedAgent({"folder": str(folder)})
    first = agent.run_step(make_agent_context(worktree, run_index=0))
    second = agent.run_step(make_agent_context(worktree, run_index=1))
    assert first.summary == "Applied 01-greeting.patch"
    assert (second.summary, second.done) == ("All done", True)
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert agent.run_step(make_agent_context(worktree, run_index=2)).done


def test_past_the_end_of_its_script_it_changes_nothing_and_asks_for_the_done_review(worktree):
    before = sorted(p.name for p in worktree.iterdir())
    result = run(worktree, [{"summary": "only", "write": {"one.txt": "1"}}], run_index=1, outcomes=("approved",))
    assert result.done
    assert "done review" in result.summary
    assert sorted(p.name for p in worktree.iterdir()) == before


REPLYING = [
    {"summary": "seven modules", "on_reject": {"summary": "two modules instead", "done": True}},
    {"summary": "second entry"},
]


@pytest.mark.parametrize(
    "outcomes, summary",
    [
        pytest.param((), "seven modules", id="the-first-run-plays-the-first-entry"),
        pytest.param(("approved",), "second entry", id="an-approved-entry-moves-on"),
        pytest.param(("failed",), "second entry", id="a-failed-entry-moves-on"),
        pytest.param(("rejected",), "two modules instead", id="a-rejected-entry-gets-its-reply"),
        pytest.param(("rejected", "approved"), "second entry", id="after-the-reply-the-script-goes-on"),
        pytest.param(("rejected", "rejected"), "second entry", id="a-rejected-reply-moves-on"),
        pytest.param(
            ("approved", "rejected"), "The script has nothing left", id="a-rejection-without-a-reply-moves-on"
        ),
    ],
)
def test_a_rejection_gets_the_entry_s_reply_before_the_script_moves_on(worktree, outcomes, summary):
    result = run(worktree, REPLYING, run_index=len(outcomes), outcomes=outcomes)
    assert result.summary.startswith(summary)


def test_a_reply_with_a_reply_of_its_own_is_refused(worktree):
    entry = {"summary": "a", "on_reject": {"summary": "b", "on_reject": {"summary": "c"}}}
    with pytest.raises(AgentError, match="no reply of its own") as error:
        run(worktree, [entry])
    assert error.value.permanent


@pytest.mark.parametrize(
    "entry, reason",
    [
        pytest.param({"fail": "the model refused"}, "the model refused", id="a-scripted-failure"),
        pytest.param({"patch": GREETING_PATCH.replace("hello", "howdy")}, "does not apply", id="a-patch-that-does-not-apply"),
        pytest.param({"patch": "diff --git a/x.bin b/x.bin\nGIT binary patch\nliteral 1\nKcmZ?wbhE\n"}, "binary", id="a-binary-patch"),
        pytest.param({"patch": "garbage\n"}, "not a unified diff", id="a-patch-that-is-not-a-diff"),
        pytest.param({"write": {"../outside.txt": "x"}}, "“..”", id="a-write-climbing-out"),
        pytest.param({"write": {"/tmp/goalpost-outside.txt": "x"}}, "absolute", id="an-absolute-write"),
        pytest.param({"write": {".git/hooks/post-commit": "x"}}, ".git", id="a-write-into-git"),
        pytest.param({"write": {"link/evil.txt": "x"}}, "symlink", id="a-write-through-a-symlink"),
        pytest.param({"delete": ["link/victim.txt"]}, "symlink", id="a-delete-through-a-symlink"),
        pytest.param({"delete": ["missing.txt"]}, "No such file", id="a-delete-of-a-missing-file"),
        pytest.param({"patch": ESCAPING_SYMLINK_PATCH}, "symlink leading outside", id="a-patch-adding-a-symlink-outside"),
    ],
)
def test_a_failed_entry_is_an_error_the_loop_may_retry(worktree, tmp_path, entry, reason):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    (worktree / "link").symlink_to(outside)
    with pytest.raises(AgentError, match=reason) as error:
        run(worktree, [entry])
    assert not error.value.permanent
    assert [p.name for p in outside.iterdir()] == ["victim.txt"]
    assert not (worktree / "exit").is_symlink()
    assert (worktree / "app.py").read_text() == "print('hello')\n"


def test_a_sleep_longer_than_the_timeout_stops_at_the_timeout(worktree):
    started = time.monotonic()
    with pytest.raises(AgentError, match="timed out after 0.2 s"):
        run(worktree, [{"sleep": 600, "write": {"late.txt": "x"}}], timeout_s=0.2)
    assert time.monotonic() - started < 5
    assert not (worktree / "late.txt").exists()


def test_the_agent_never_commits(worktree):
    run(worktree, [{"patch": GREETING_PATCH}])
    assert run_git(worktree, "log", "--oneline").count("\n") == 1


@pytest.mark.parametrize(
    "agent_settings, reason",
    [
        pytest.param({}, 'either "steps" or "folder"', id="neither-steps-nor-folder"),
        pytest.param({"steps": [], "folder": "/tmp"}, 'either "steps" or "folder"', id="both"),
        pytest.param({"steps": "patch"}, "must be a list", id="steps-not-a-list"),
        pytest.param({"steps": ["patch"]}, "step 1 must be a JSON object", id="an-entry-not-an-object"),
        pytest.param({"steps": [{"sumary": "x"}]}, "unknown key 'sumary'", id="a-misspelt-key"),
        pytest.param({"steps": [{"tokens": "many"}]}, "tokens has the wrong type", id="tokens-not-a-number"),
        pytest.param({"steps": [{"done": 1}]}, "done has the wrong type", id="done-not-a-boolean"),
        pytest.param({"steps": [{"tokens": True}]}, "tokens has the wrong type", id="a-boolean-is-no-count"),
        pytest.param({"steps": [{"sleep": -1}]}, "cannot be negative", id="a-negative-sleep"),
        pytest.param({"steps": [{"write": {"a": 1}}]}, "write maps file paths to text", id="write-not-text"),
        pytest.param({"steps": [{"patch": "x", "patch_file": "/x"}]}, "either patch or patch_file", id="patch-and-patch-file"),
        pytest.param({"steps": [{"patch_file": "x.patch"}]}, "must be an absolute path", id="a-relative-patch-file"),
        pytest.param({"folder": "/no/such/folder"}, "does not exist", id="a-missing-folder"),
    ],
)
def test_bad_settings_are_permanent_errors(agent_settings, reason):
    with pytest.raises(AgentError, match=reason) as error:
        ScriptedAgent(agent_settings)
    assert error.value.permanent


def test_a_folder_entry_that_is_not_json_is_a_permanent_error(tmp_path):
    (tmp_path / "01.json").write_text("{not json")
    with pytest.raises(AgentError, match="01.json is not valid JSON") as error:
        ScriptedAgent({"folder": str(tmp_path)})
    assert error.value.permanent


def test_a_missing_patch_file_is_a_permanent_error(worktree, tmp_path):
    with pytest.raises(AgentError, match="Cannot read the patch file") as error:
        run(worktree, [{"patch_file": str(tmp_path / "gone.patch")}])
    assert error.value.permanent


def test_a_missing_worktree_is_an_agent_error(tmp_path):
    with pytest.raises(AgentError, match="does not exist"):
        run(tmp_path / "gone", [{"summary": "x"}])
