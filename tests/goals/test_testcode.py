"""The per-framework test analysers (goals/testcode/) and what the two test gates make of them.

Every case is written here in our own words: a line for the analysers, a file before and after for the gates.
"""

import time

import pytest

from goals.testcode import analyser_for, checks
from tests.support.diffs import gates

# --- the analysers, line by line --------------------------------------------------------------------------

PY, JS, TS, GO, RS, JAVA, RB = "t.py", "t.test.js", "t.test.ts", "t_test.go", "t.rs", "T.java", "t_spec.rb"


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(PY, "assert total == 5", id="pytest assert"),
        pytest.param(PY, "with pytest.raises(ValueError):", id="pytest raises"),
        pytest.param(PY, "self.assertEqual(total, 5)", id="unittest assertEqual"),
        pytest.param(JS, "expect(total).toBe(5);", id="jest expect"),
        pytest.param(TS, "expectTypeOf(total).toEqualTypeOf<number>();", id="vitest expectTypeOf"),
        pytest.param(JS, "assert.strictEqual(total, 5);", id="node assert"),
        pytest.param(JS, "total.should.equal(5);", id="chai should"),
        pytest.param(JS, "t.is(total, 5);", id="ava t.is"),
        pytest.param(JS, "t.true(total > 4);", id="ava t.true"),
        pytest.param(GO, 't.Errorf("got %d", got)', id="go t.Errorf"),
        pytest.param(GO, "require.Equal(t, 5, got)", id="testify require"),
        pytest.param(GO, "if got != want {", id="go comparison guarding a report"),
        pytest.param(RS, "assert_eq!(total, 5);", id="rust assert_eq"),
        pytest.param(RS, "assert!(total.is_ok());", id="rust assert"),
        pytest.param(JAVA, "assertEquals(5, total);", id="junit assertEquals"),
        pytest.param(JAVA, "assertThat(total).isEqualTo(5);", id="truth assertThat"),
        pytest.param(RB, "expect(total).to eq(5)", id="rspec expect"),
    ],
)
def test_it_recognises_an_assertion(path, line):
    assert analyser_for(path).is_assertion(line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(PY, "total = compute(5)", id="python assignment"),
        pytest.param(PY, "# assert total == 5", id="python comment"),
        pytest.param(JS, "const total = sum([2, 3]);", id="js assignment"),
        pytest.param(GO, "if err != nil {", id="go error guard"),
        pytest.param(RS, "let total = sum(&[2, 3]);", id="rust let"),
        pytest.param(RS, "// assert_eq!(total, 5);", id="rust comment"),
        pytest.param(JAVA, "int total = sum(2, 3);", id="java assignment"),
    ],
)
def test_it_does_not_take_ordinary_code_for_an_assertion(path, line):
    assert not analyser_for(path).is_assertion(line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(PY, "@pytest.mark.skipif(sys.platform == 'win32', reason='paths')", id="pytest skipif"),
        pytest.param(PY, "@pytest.mark.xfail(reason='flaky')", id="pytest xfail"),
        pytest.param(PY, "numpy = pytest.importorskip('numpy')", id="pytest module-level importorskip"),
        pytest.param(PY, "    pytest.skip('not on this platform')", id="pytest skip call"),
        pytest.param(PY, "@unittest.skipUnless(HAS_NET, 'network')", id="unittest skipUnless"),
        pytest.param(PY, "self.skipTest('later')", id="unittest skipTest"),
        pytest.param(PY, "@unittest.expectedFailure", id="unittest expectedFailure"),
        pytest.param(JS, "test.failing('adds', () => {", id="jest test.failing"),
        pytest.param(JS, "it.skip('adds', () => {", id="jest it.skip"),
        pytest.param(JS, "xdescribe('sum', () => {", id="jest xdescribe"),
        pytest.param(TS, "test.skipIf(isWindows)('paths', () => {", id="vitest skipIf"),
        pytest.param(TS, "test.fails('known bug', () => {", id="vitest fails"),
        pytest.param(JS, "this.skip();", id="mocha this.skip"),
        pytest.param(JS, "test.failing('parses', t => {", id="ava failing"),
        pytest.param(GO, 't.Skip("needs network")', id="go t.Skip"),
        pytest.param(GO, "if testing.Short() {", id="go testing.Short"),
        pytest.param(RS, "#[ignore]", id="rust ignore"),
        pytest.param(RS, "#[cfg_attr(miri, ignore)]", id="rust cfg_attr ignore"),
        pytest.param(RS, '#[cfg(not(target_os = "windows"))]', id="rust cfg gate"),
        pytest.param(RS, "#[rustversion::since(1.80)]", id="rust rustversion"),
        pytest.param(RS, "if cfg!(miri) {", id="rust cfg! macro"),
        pytest.param(JAVA, '@Disabled("slow")', id="junit5 Disabled"),
        pytest.param(JAVA, "@Ignore", id="junit4 Ignore"),
        pytest.param(JAVA, "assumeTrue(isLinux());", id="junit assumeTrue"),
        pytest.param(JAVA, "Assume.assumeFalse(onCi);", id="junit Assume"),
        pytest.param(RB, "xit 'adds' do", id="rspec xit"),
        pytest.param(RB, "skip 'later'", id="rspec skip"),
    ],
)
def test_it_recognises_a_skip_marker(path, line):
    assert analyser_for(path).is_skip(line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(PY, "# @pytest.mark.skip", id="python comment"),
        pytest.param(JS, "it('skips empty lines', () => {", id="a test named skip"),
        pytest.param(RS, "#[test]", id="rust test attribute"),
        pytest.param(JAVA, "@Test", id="junit Test"),
    ],
)
def test_it_does_not_take_a_plain_line_for_a_skip(path, line):
    assert not analyser_for(path).is_skip(line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(JS, "it.only('adds', () => {", id="jest it.only"),
        pytest.param(JS, "fdescribe('sum', () => {", id="jasmine fdescribe"),
        pytest.param(JS, "test.only('parses', t => {", id="ava only"),
        pytest.param(RB, "fit 'adds' do", id="rspec fit"),
    ],
)
def test_it_recognises_a_focus_marker(path, line):
    assert analyser_for(path).is_focus(line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        pytest.param(PY, "def test_total():", id="pytest function"),
        pytest.param(PY, "    async def test_total(self):", id="async method"),
        pytest.param(JS, "it('adds', () => {", id="jest it"),
        pytest.param(JS, "browserTest('uploads', async (t, page) => {", id="a project's own test wrapper"),
        pytest.param(GO, "func TestTotal(t *testing.T) {", id="go Test func"),
        pytest.param(GO, 't.Run("empty", func(t *testing.T) {', id="go subtest"),
        pytest.param(RS, "#[test]", id="rust test attribute"),
        pytest.param(RS, "#[tokio::test]", id="rust tokio test"),
        pytest.param(JAVA, "@ParameterizedTest", id="junit parameterized"),
        pytest.param(RB, "it 'adds' do", id="rspec it"),
    ],
)
def test_it_recognises_a_test_definition(path, line):
    assert analyser_for(path).is_definition(line)


def test_a_name_that_starts_like_expected_is_no_expectation():
    assert checks.is_expectation("expected_total = 5")
    assert checks.is_expectation("want := 5")
    assert not checks.is_expectation('List<String> exports = split(header("Export-Package"));')


def test_a_rust_attribute_is_not_a_comment_but_a_python_hash_is():
    assert not analyser_for(RS).is_comment("#[ignore]")
    assert analyser_for(PY).is_comment("# assert x")


# --- how specific a check is ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("assert n <= 4", "assert n <= 30", "expected value loosened", id="upper bound raised"),
        pytest.param("assert n > 2", "assert n > 0", "expected value loosened", id="lower bound lowered"),
        pytest.param("TOLERANCE = 1e-9", "TOLERANCE = 1e-3", "expected value loosened", id="tolerance grown"),
        pytest.param(
            "self.assertAlmostEqual(a, b, places=7)",
            "self.assertAlmostEqual(a, b, places=2)",
            "expected value loosened",
            id="fewer places",
        ),
        pytest.param(
            "assert msg == 'no such file: a.txt'",
            "assert msg == 'no such'",
            "expected value loosened",
            id="expected text cut down",
        ),
        pytest.param("assert total == 5", "assert total >= 5", "assertion loosened", id="equality to bound"),
        pytest.param("assert total == 5", "assert total == 6", None, id="another expected value"),
        pytest.param("assert n <= 4", "assert n <= 3", None, id="bound tightened"),
        pytest.param("TOLERANCE = 1e-3", "TOLERANCE = 1e-9", None, id="tolerance tightened"),
        pytest.param(
            "assert msg == 'no such'", "assert msg == 'no such file: a.txt'", None, id="expected text grown"
        ),
    ],
)
def test_weakening_of_a_replaced_check(old, new, expected):
    assert checks.weakening_of(old, new) == expected


@pytest.mark.parametrize(
    ("removed", "added", "widened"),
    [
        pytest.param(
            ["t.is(count, 1);"], ["t.true(count >= 0 && count <= 1);"], ["count"], id="exact to range"
        ),
        pytest.param(
            ["t.true(count >= 2 && count <= 3);"],
            ["t.true(count >= 2 && count <= 4);"],
            ["count"],
            id="range grown",
        ),
        pytest.param(
            ["t.true(count >= 2 && count <= 4);"],
            ["t.true(count >= 2);", "t.true(count < 30);"],
            ["count"],
            id="range split over two checks",
        ),
        pytest.param(["assert count == 5"], ["assert count == 6"], [], id="moved, not widened"),
        pytest.param(["assert 2 <= count <= 5"], ["assert 3 <= count <= 4"], [], id="narrowed"),
    ],
)
def test_ranges_widened(removed, added, widened):
    assert checks.ranges_widened(removed, added) == widened


# --- the gates on whole diffs -----------------------------------------------------------------------------


CODE = {
    "shop/total.py": ("def total(xs):\n    return sum(xs)\n", "def total(xs):\n    return sum(xs or [])\n")
}
BOTH = {"tests_without_code", "tests_weakened"}

PY_BEFORE = """import pytest

from shop import total


def test_total():
    assert total([2, 3]) == 5


def test_empty():
    assert total([]) == 0
"""
JS_BEFORE = """import test from 'ava';
import total from '../index.js';

test('adds', t => {
\tt.is(total([2, 3]), 5);
});
"""
GO_BEFORE = """package shop

import "testing"

func TestTotal(t *testing.T) {
\tif got := Total(2, 3); got != 5 {
\t\tt.Errorf("Total = %d", got)
\t}
}
"""
RS_BEFORE = """use shop::total;

#[test]
fn adds() {
    assert_eq!(total(&[2, 3]), 5);
}
"""
JAVA_BEFORE = """package shop;

import org.junit.Test;

public class TotalTest {
  @Test
  public void adds() {
    assertEquals(5, Total.of(2, 3));
  }
}
"""
RB_BEFORE = """describe Total do
  it 'adds' do
    expect(Total.of(2, 3)).to eq(5)
  end
end
"""


@pytest.mark.parametrize(
    ("files", "fired"),
    [
        # A new marker on an existing test, in every framework: weakened, and an edit of the test.
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE.replace("def test_empty", "@pytest.mark.xfail\ndef test_empty"),
                )
            },
            BOTH,
            id="pytest xfail on an existing test",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE.replace(
                        "from shop import total",
                        "numpy = pytest.importorskip('numpy')\n\nfrom shop import total",
                    ),
                )
            },
            BOTH,
            id="module-level importorskip",
        ),
        pytest.param(
            {"test/total.js": (JS_BEFORE, JS_BEFORE.replace("test('adds'", "test.failing('adds'"))},
            BOTH,
            id="ava test.failing",
        ),
        pytest.param(
            {"shop/total_test.go": (GO_BEFORE, GO_BEFORE.replace("\tif got", '\tt.Skip("flaky")\n\tif got'))},
            BOTH,
            id="go t.Skip in an existing test",
        ),
        pytest.param(
            {
                "tests/total.rs": (
                    RS_BEFORE,
                    RS_BEFORE.replace("#[test]", "#[test]\n#[cfg_attr(windows, ignore)]"),
                )
            },
            BOTH,
            id="rust ignore on windows",
        ),
        pytest.param(
            {
                "src/test/java/shop/TotalTest.java": (
                    JAVA_BEFORE,
                    JAVA_BEFORE.replace("    assertEquals", "    assumeTrue(onLinux());\n    assertEquals"),
                )
            },
            BOTH,
            id="junit assumeTrue in an existing test",
        ),
        pytest.param(
            {"spec/total_spec.rb": (RB_BEFORE, RB_BEFORE.replace("  it 'adds'", "  xit 'adds'"))},
            BOTH,
            id="rspec xit",
        ),
        # Loosened checks.
        pytest.param(
            {
                "test/total.js": (
                    JS_BEFORE,
                    JS_BEFORE.replace("t.is(total([2, 3]), 5);", "t.true(total([2, 3]) > 0);"),
                )
            },
            BOTH,
            id="ava exact value to a truthy bound",
        ),
        pytest.param(
            {
                "tests/helpers.py": (
                    "EPSILON = 1e-12\n\ndef near(a, b):\n    return abs(a - b) < EPSILON\n",
                    "EPSILON = 1e-2\n\ndef near(a, b):\n    return abs(a - b) < EPSILON\n",
                )
            },
            BOTH,
            id="a helper's tolerance grown",
        ),
        pytest.param(
            {
                "tests/helpers.py": (
                    "def near(a, b):\n    return abs(a - b) < 0.001\n",
                    "def near(a, b):\n    return abs(a - b) < 0.5\n",
                )
            },
            BOTH,
            id="a helper's comparison bound raised",
        ),
        pytest.param(
            {
                "test/total.js": (
                    JS_BEFORE,
                    JS_BEFORE.replace("\tt.is(", "\tif (process.env.CI) return;\n\tt.is("),
                )
            },
            BOTH,
            id="an existing test returns early",
        ),
        pytest.param(
            {
                "tests/total.rs": (
                    RS_BEFORE.replace("5);\n}", "5);\n    assert_eq!(total(&[]), 0);\n}"),
                    RS_BEFORE.replace(
                        "5);\n}",
                        "5);\n}\n\n#[rustversion::since(1.90)]\n#[test]\nfn empty() {\n    assert_eq!(total(&[]), 0);\n}",
                    ),
                )
            },
            BOTH,
            id="a check split out of a test behind a version gate",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE.replace("\n\ndef test_empty():\n    assert total([]) == 0\n", ""),
                )
            },
            BOTH,
            id="a test deleted",
        ),
        # Edits that are not weakenings.
        pytest.param(
            {"tests/test_total.py": (PY_BEFORE, PY_BEFORE.replace("== 5", "== 6"))},
            {"tests_without_code"},
            id="another expected value",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE.replace(
                        "def test_total():\n", "def test_total():\n    with open_db():\n        pass\n"
                    ),
                    PY_BEFORE.replace(
                        "def test_total():\n    assert",
                        "def test_total():\n    with open_db():\n        assert",
                    ),
                )
            },
            {"tests_without_code"},
            id="an assert moved into a with block",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE.replace("== 0\n", "== 0\n    assert total([]) == 0\n"),
                    PY_BEFORE,
                )
            },
            {"tests_without_code"},
            id="a duplicate assert removed",
        ),
        pytest.param(
            {
                "shop/total.py": (
                    "def total(xs):\n    return sum(xs)\n",
                    "def total(xs):\n    # sums\n    return sum(xs)\n",
                ),
                "tests/test_total.py": (PY_BEFORE, PY_BEFORE.replace("== 5", "== 6")),
            },
            {"tests_without_code"},
            id="a comment is no product code",
        ),
        pytest.param(
            {
                "src/total.rs": (
                    "pub fn total(xs: &[i32]) -> i32 {\n    xs.iter().sum()\n}\n\n#[cfg(test)]\nmod tests {\n"
                    "    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(total(&[2, 3]), 5);\n    }\n}\n",
                    "pub fn total(xs: &[i32]) -> i32 {\n    xs.iter().sum()\n}\n\n#[cfg(test)]\nmod tests {\n"
                    "    use super::*;\n\n    #[test]\n    #[ignore]\n    fn adds() {\n        assert_eq!(total(&[2, 3]), 5);\n    }\n}\n",
                )
            },
            BOTH,
            id="a rust unit test inside a source file ignored",
        ),
    ],
)
def test_the_test_gates_on_a_diff(files, fired):
    assert gates(files) == fired


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {
                **CODE,
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE
                    + "\n\n@pytest.mark.skipif(WIN, reason='x')\ndef test_paths():\n    assert total([1]) == 1\n",
                ),
            },
            id="a new test with its own skip",
        ),
        pytest.param(
            {
                **CODE,
                "shop/total_test.go": (
                    GO_BEFORE,
                    GO_BEFORE
                    + '\nfunc TestBig(t *testing.T) {\n\tt.Skip("slow")\n\tif Total(1) != 1 {\n\t\tt.Fatal("big")\n\t}\n}\n',
                ),
            },
            id="a new go test that skips",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE.replace(
                        "def test_total():\n", "def test_total():\n    pytest.importorskip('numpy')\n"
                    ),
                    PY_BEFORE,
                )
            },
            id="an importorskip removed",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE.replace("    assert total([2, 3]) == 5", "    total([2, 3]) == 5"),
                    PY_BEFORE,
                )
            },
            id="an added missing assert",
        ),
        pytest.param(
            {
                **CODE,
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE.replace(
                        "    assert total([]) == 0",
                        "    with pytest.raises(ValueError):\n        total(None)",
                    ),
                ),
            },
            id="pytest.raises replaces an equality check",
        ),
        pytest.param(
            {
                "tests/test_total.py": (
                    PY_BEFORE,
                    PY_BEFORE.replace(
                        "    assert total([2, 3]) == 5\n",
                        "    assert total([2, 3]) == 5\n    assert total([1]) == 1\n",
                    ),
                )
            },
            id="a check added",
        ),
        pytest.param(
            {
                "tests/test_imports.py": (
                    'ALLOWED_MODULES = {\n    "json",\n    "shutil",\n    "sys",\n}\n',
                    'ALLOWED_MODULES = {\n    "json",\n    "sys",\n}\n',
                )
            },
            id="an entry taken out of an allow-list",
        ),
        pytest.param(
            {
                **CODE,
                "shop/total_test.go": (
                    GO_BEFORE,
                    GO_BEFORE.replace(
                        "\t}\n}\n",
                        '\t}\n\tt.Run("big", func(t *testing.T) {\n\t\tt.Skip("slow")\n\t\tif Total(1) != 1 {\n'
                        '\t\t\tt.Fatal("big")\n\t\t}\n\t})\n}\n',
                    ),
                ),
            },
            id="a new go subtest that skips",
        ),
        pytest.param(
            {
                "tests/total.rs": (
                    "#![allow(clippy::float_cmp)]\n" + RS_BEFORE,
                    "#![allow(clippy::float_cmp, clippy::unreadable_literal)]\n" + RS_BEFORE,
                ),
            },
            id="a lint attribute",
        ),
    ],
)
def test_strengthenings_and_new_tests_stay_quiet(files):
    assert gates(files) == set()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("#[cfg_attr(" * 300, id="nested attribute openers"),
        pytest.param("if (" + "a(" * 900 + ") return", id="a deep early return"),
        pytest.param("x" * 1999 + " <= 5", id="a long comparison"),
        pytest.param("@pytest.mark.skip " * 100, id="many markers"),
        pytest.param("\x00\x1b[31m assert \udcff == 5", id="control characters"),
    ],
)
def test_a_hostile_test_file_is_judged_quickly(line):
    # The agent writes the tests: a diff of odd, long, repeated lines must not stall the review.
    before = "def test_x():\n    assert 1\n"
    after = before + "".join(f"{line}\n" for _ in range(300))
    started = time.perf_counter()
    for path in ("tests/test_x.py", "tests/x.rs", "test/x.test.js"):
        gates({path: (before + "".join(f"    {line}\n" for _ in range(300)), after)})
    assert time.perf_counter() - started < 10
