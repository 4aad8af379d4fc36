"""The diff viewer's pure helpers: highlighting, summaries, gate marks and what the first load renders."""

import pytest

from approvals import diffview
from goals.diffs import parse_diff
from tests.factories import IMG, SCRIPT


def git_file(path: str, removed: list[str], added: list[str], context: list[str] = (), old_path: str = "") -> str:
    """One file of a git diff: context lines first, then the removed and added ones."""
    old = old_path or path
    lines = [f" {text}" for text in context] + [f"-{text}" for text in removed] + [f"+{text}" for text in added]
    header = f"diff --git a/{old} b/{path}\n"
    if old_path:
        header += f"similarity index 90%\nrename from {old}\nrename to {path}\n"
    header += f"index 1111111..2222222 100644\n--- a/{old}\n+++ b/{path}\n"
    old_len, new_len = len(context) + len(removed), len(context) + len(added)
    return header + f"@@ -1,{old_len} +1,{new_len} @@\n" + "".join(line + "\n" for line in lines)


def files_of(*chunks: str):
    return parse_diff("".join(chunks)).files


BINARY = "diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..1111111\nBinary files /dev/null and b/logo.png differ\n"
PURE_RENAME = "diff --git a/old.py b/new.py\nsimilarity index 100%\nrename from old.py\nrename to new.py\n"


# --- highlighting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "lines", "expected"),
    [
        pytest.param("shop.py", ["def total(items):"], ['<span class="k">def</span> <span class="nf">total</span>'],
                     id="python keywords and function names get Pygments' classes"),
        pytest.param("app.js", ["const x = 1;"], ['<span class="kd">const</span>'], id="the lexer follows the extension"),
        pytest.param("notes.unknownext", ["def total():"], ["def total():"], id="an unknown extension is plain text"),
        pytest.param("Makefile", ["run:", "\tpython -m app"], ["run", "python"], id="a file name without extension"),
        pytest.param("a.py", ['x = """start', 'end"""'], ['<span class="s2">&quot;&quot;&quot;start</span>',
                     '<span class="s2">end&quot;&quot;&quot;</span>'], id="a string across lines is closed on each line"),
        pytest.param("a.py", ["", "x = 1", ""], ["", "<span", ""], id="blank lines keep their place"),
        pytest.param("page.html", [SCRIPT], ["&lt;", "script", "alert", "&gt;"], id="markup in the code is escaped"),
        pytest.param("a.txt", [IMG], ["&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"], id="quotes are escaped"),
    ],
)
def test_highlight(path, lines, expected):
    rendered = diffview.highlight(path, lines)
    assert len(rendered) == len(lines)
    joined = "\n".join(rendered)
    for piece in expected:
        assert piece in joined
    assert "<script" not in joined and "<img" not in joined
    for line in rendered:
        assert line.count("<span") == line.count("</span>")  # every line's spans are closed on that line


def test_highlight_of_nothing_is_nothing():
    assert diffview.highlight("a.py", []) == []


def test_a_stray_carriage_return_falls_back_to_plain_lines():
    assert diffview.highlight("a.py", ["x = 1\r y = 2", "z"]) == ["x = 1\r y = 2", "z"]


# --- rendering one file ------------------------------------------------------------------------------------


def test_a_rendered_file_keeps_old_and_new_line_numbers():
    (file,) = files_of(git_file("shop.py", ["a = 1"], ["a = 2", "b = 3"], context=["import os"]))
    view = diffview.render_file(file, 0, [])
    lines = view.hunks[0].lines
    assert [(line.kind, line.old, line.new) for line in lines] == [
        (" ", 1, 1), ("-", 2, None), ("+", None, 2), ("+", None, 3)
    ]
    assert view.rendered and not view.plain
    assert '<span class="mi">1</span>' in lines[1].html and '<span class="mi">2</span>' in lines[2].html


@pytest.mark.parametrize(
    ("diff", "rendered", "large", "binary", "change", "old_path"),
    [
        pytest.param(git_file("a.py", ["x"], ["y"]), True, False, False, "modified", None, id="a small file renders"),
        pytest.param(BINARY, False, False, True, "added", None, id="a binary file is never rendered"),
        pytest.param(PURE_RENAME, True, False, False, "renamed", "old.py", id="a pure rename renders without hunks"),
        pytest.param(git_file("new.py", ["x"], ["y"], old_path="old.py"), True, False, False, "renamed", "old.py",
                     id="a rename with changes"),
        pytest.param(git_file("big.txt", [], [f"line {n}" for n in range(2_001)]), False, True, False, "modified",
                     None, id="over 2,000 lines is large and summarised"),
        pytest.param(git_file("min.js", [], ["x" * 160_000]), False, True, False, "modified", None,
                     id="a minified line makes a file large"),
    ],
)
def test_what_render_file_shows(diff, rendered, large, binary, change, old_path):
    (file,) = files_of(diff)
    view = diffview.render_file(file, 0, [])
    assert (view.rendered, view.large, view.binary, view.change, view.old_path) == (
        rendered, large, binary, change, old_path
    )


def test_a_large_file_renders_when_asked_plainly_past_the_highlight_limit():
    (file,) = files_of(git_file("big.py", [], [f"x_{n} = {n}" for n in range(6_000)]))
    view = diffview.render_file(file, 0, [], force=True)
    assert view.rendered and view.plain
    assert view.hunks[0].lines[0].html == "x_0 = 0"


def test_file_view_escapes_everything_it_renders():
    (file,) = files_of(git_file(f"x{IMG[2:9]}.html", [SCRIPT], [IMG]))
    view = diffview.render_file(file, 0, [])
    html = "".join(line.html for line in view.hunks[0].lines)
    assert "<script" not in html and "<img" not in html
    assert "&lt;" in html


# --- marking the lines the gates quoted --------------------------------------------------------------------

CODE = git_file("shop.py", ["    return sum(items)"], ["    return sum(items) - discount", "    return 0"])
TESTS = git_file("tests/test_shop.py", ["    assert total([2, 3]) == 5"], ["    assert total([2, 3]) >= 0"])


def quote(*lines, path=None, severity="approval", **data) -> dict:
    return {"gate": "tests_weakened", "severity": severity, "reason": "r", "path": path, "lines": list(lines),
            "data": data}  # fmt: skip


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        pytest.param([quote("-    assert total([2, 3]) == 5", "+    assert total([2, 3]) >= 0",
                            path="tests/test_shop.py")],
                     {1: {(0, 0): (0,), (0, 1): (0,)}}, id="a finding marks the lines it quotes in its file"),
        pytest.param([quote("+    return 0", path="tests/test_shop.py")], {}, id="only in the file it names"),
        pytest.param([quote("+    return 0")], {0: {(0, 2): (0,)}}, id="a finding naming no file marks any file"),
        pytest.param([quote("+    return 0", paths=["shop.py"])], {0: {(0, 2): (0,)}}, id="data.paths names files"),
        pytest.param([quote("+    return 0", severity="info")], {}, id="info findings mark nothing"),
        pytest.param([quote("-    return 0")], {}, id="the kind must match, not only the text"),
        pytest.param([quote("+    return 0"), quote("+    return 0", path="shop.py")],
                     {0: {(0, 2): (0, 1)}}, id="two findings can mark one line"),
        pytest.param([quote("not a quote", "")], {}, id="lines without a diff marker are ignored"),
    ],
)
def test_marks_for_file(findings, expected):
    files = files_of(CODE, TESTS)
    marks = {index: diffview.marks_for_file(file, findings) for index, file in enumerate(files)}
    assert {index: found for index, found in marks.items() if found} == expected


def test_a_quote_cut_at_the_gates_line_length_still_marks_its_line():
    long_line = "x = '" + "a" * 3_000 + "'"
    (file,) = files_of(git_file("a.py", [], [long_line]))
    assert diffview.marks_for_file(file, [quote("+" + long_line[:2_000])]) == {(0, 0): (0,)}


def test_the_first_marked_line_of_each_finding_carries_its_anchor():
    (file,) = files_of(git_file("a.py", [], ["x = 1", "x = 1", "y = 2"]))
    findings = [quote("+x = 1", "+y = 2"), quote("+y = 2")]
    lines = diffview.render_file(file, 0, findings).hunks[0].lines
    assert [(line.marks, line.anchors) for line in lines] == [((0,), (0,)), ((), ()), ((0, 1), (1,))]


def test_finding_targets_point_at_the_first_marked_file_else_the_named_one():
    files = files_of(CODE, TESTS)
    findings = [
        quote("+    assert total([2, 3]) >= 0"),
        quote(path="shop.py"),
        quote(path="elsewhere.py"),
        quote("+    return 0", severity="info"),
    ]
    assert diffview.finding_targets(files, findings) == {0: (1, True), 1: (0, False)}


# --- what the first load renders ---------------------------------------------------------------------------


def small(n: int, lines: int = 2) -> str:
    return git_file(f"f{n}.py", [], [f"x_{k} = {k}" for k in range(lines)])


@pytest.mark.parametrize(
    ("chunks", "flagged", "expected"),
    [
        pytest.param([small(n) for n in range(6)], set(), {0, 1, 2}, id="the first three files"),
        pytest.param([small(n) for n in range(2)], set(), {0, 1}, id="fewer files, all of them"),
        pytest.param([small(n) for n in range(6)], {5}, {0, 1, 2, 5}, id="and the files the gates flagged"),
        pytest.param([BINARY, small(1), small(2)], set(), {1, 2}, id="never a binary file"),
        pytest.param([small(0, 2_100), small(1), small(2)], set(), {1, 2}, id="never a large file"),
        pytest.param([small(0, 900), small(1, 200), small(2)], set(), {0, 2}, id="while the page stays small"),
    ],
)
def test_first_load(chunks, flagged, expected):
    assert diffview.first_load(files_of(*chunks), flagged) == expected


# --- one file out of a big diff ----------------------------------------------------------------------------


@pytest.mark.parametrize("expected_files", [4, None, 99], ids=["cut at the file", "count unknown", "count wrong"])
def test_file_at_finds_the_same_file_however_it_parses(expected_files):
    text = "".join([small(0), BINARY, PURE_RENAME, small(3)])
    assert diffview.file_at(text, 2, expected_files).path == "new.py"
    assert diffview.file_at(text, 3, expected_files).path == "f3.py"
    assert diffview.file_at(text, 4, expected_files) is None
    assert diffview.file_at(text, -1, expected_files) is None


def test_file_at_reads_a_plain_unified_diff_too():
    text = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-x\n+y\n--- b.py\n+++ b.py\n@@ -1 +1 @@\n-p\n+q\n"
    assert diffview.file_at(text, 1, 2).path == "b.py"


# --- the files of a recorded diff, without parsing it ------------------------------------------------------


def test_an_index_from_the_record_says_what_a_parse_says():
    text = "".join([small(0), BINARY, PURE_RENAME, CODE, small(4, 2_100)])
    parsed = parse_diff(text)
    indexed = diffview.index(text, parsed.compact())
    assert [diffview.summarise(file, n) for n, file in enumerate(indexed)] == [
        diffview.summarise(file, n) for n, file in enumerate(parsed.files)
    ]
    assert [file.parsed() for file in indexed] == list(parsed.files)
    assert diffview.first_load(indexed) == diffview.first_load(parsed.files)
    findings = [quote("+    return 0"), quote(path="new.py")]
    assert diffview.finding_targets(indexed, findings) == diffview.finding_targets(parsed.files, findings)
    assert [diffview.render_file(file, n, findings) for n, file in enumerate(indexed)] == [
        diffview.render_file(file, n, findings) for n, file in enumerate(parsed.files)
    ]


def without_sizes(compact: list[dict]) -> list[dict]:
    return [{key: value for key, value in entry.items() if key not in ("lines", "chars")} for entry in compact]


@pytest.mark.parametrize(
    ("text", "record"),
    [
        pytest.param(small(0) + small(1), lambda c: None, id="no record"),
        pytest.param(small(0) + small(1), lambda c: c[:1], id="a record of another diff (the stored one was cut)"),
        pytest.param(small(0) + small(1), without_sizes, id="a record from before sizes were kept"),
        pytest.param("--- a.py\n+++ a.py\n@@ -1 +1 @@\n-x\n+y\n", lambda c: c, id="a plain unified diff"),
    ],
)
def test_without_a_record_that_lines_up_the_diff_is_parsed(text, record):
    assert diffview.index(text, record(parse_diff(text).compact())) is None
