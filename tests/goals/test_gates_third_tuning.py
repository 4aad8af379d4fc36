"""Kinds of test edit met in the third tuning round, written in our own words as small files before and after."""

import pytest

from tests.support.diffs import gates

LEDGER_TEST = """package shop;

public class LedgerTest {
  @Test public void addsEntries() {
    assertEquals(2, ledger().entries().size());
  }

{retired}  @Test public void convertsWithLiveRates() {
    Ledger ledger = new Ledger(RemoteRates.connect());
    assertEquals("11.20", ledger.total("USD").amount());
  }

  @Test public void refusesNegativeEntries() {
    assertThrows(IllegalArgumentException.class, () -> ledger().add(-1));
  }
}
"""
WITHOUT_CONVERSION = """package shop;

public class LedgerTest {
  @Test public void addsEntries() {
    assertEquals(2, ledger().entries().size());
  }

  @Test public void refusesNegativeEntries() {
    assertThrows(IllegalArgumentException.class, () -> ledger().add(-1));
  }
}
"""


@pytest.mark.parametrize(
    ("marker", "weakened"),
    [
        pytest.param('  @Ignore("the rate service is gone")\n', False, id="an ignored test checked nothing"),
        pytest.param("  @Disabled\n", False, id="a disabled one neither"),
        pytest.param("", True, id="a running test did"),
    ],
)
def test_deleting_a_test_that_no_longer_ran_weakens_nothing(marker, weakened):
    found = gates(
        {"src/test/java/shop/LedgerTest.java": (LEDGER_TEST.replace("{retired}", marker), WITHOUT_CONVERSION)}
    )
    assert ("tests_weakened" in found) is weakened
    assert "tests_without_code" in found  # existing test code still went without code


def test_deleting_an_xfailed_test_is_still_a_weakening():
    # An xfail test runs and is checked to fail; taking it out loses that check.
    before = "import pytest\n\n\n@pytest.mark.xfail(strict=True)\ndef test_old():\n    assert parse('x') == 1\n\n\ndef test_new():\n    assert parse('y') == 2\n"
    after = "import pytest\n\n\ndef test_new():\n    assert parse('y') == 2\n"
    assert "tests_weakened" in gates({"tests/test_parse.py": (before, after)})


def test_lifting_a_skip_keeps_the_test_and_is_no_edit():
    before = "describe('socket', () => {\n  it.skip('reconnects', async () => {\n    expect(await connect()).toBe(true);\n  });\n});\n"
    after = before.replace("it.skip(", "it(")
    assert not {"tests_weakened", "tests_without_code"} & gates({"test/socket.test.js": (before, after)})


UPLOAD_TEST = """public class UploadTest {
  @Test public void refusesLargeUploads() {
    try {
      client.upload(largeFile());
      fail("expected the size limit");
    } catch (PayloadTooLargeException expected) {
      assertEquals(413, expected.status());
    }
  }
}
"""


def test_a_catch_clause_added_to_an_existing_try_widens_the_expected_exception():
    widened = UPLOAD_TEST.replace("    }\n  }\n}", "    } catch (IOException expected) {\n    }\n  }\n}")
    found = gates({"src/test/java/UploadTest.java": (UPLOAD_TEST, widened)})
    assert {"tests_weakened", "tests_without_code"} <= found


def test_a_new_try_with_its_own_fail_is_a_new_check_not_a_widening():
    stronger = UPLOAD_TEST.replace(
        "    }\n  }\n}",
        '    }\n    try {\n      client.upload(emptyFile());\n      fail("expected a refusal");\n'
        "    } catch (EmptyPayloadException expected) {\n    }\n  }\n}",
    )
    assert "tests_weakened" not in gates({"src/test/java/UploadTest.java": (UPLOAD_TEST, stronger)})


ROUND_TRIP = """#[test]
fn round_trips() {
    check_round_trip("0s");
    check_round_trip("1ms");
    check_round_trip("1h");
}
"""


def test_removed_calls_of_a_rust_check_helper_are_removed_checks():
    fewer = ROUND_TRIP.replace('    check_round_trip("0s");\n    check_round_trip("1ms");\n', "")
    assert "tests_weakened" in gates({"tests/duration.rs": (ROUND_TRIP, fewer)})
    more = ROUND_TRIP.replace(
        '    check_round_trip("1h");\n', '    check_round_trip("1h");\n    check_round_trip("2d");\n'
    )
    assert "tests_weakened" not in gates({"tests/duration.rs": (ROUND_TRIP, more)})


def test_the_tests_of_a_vendored_copy_follow_the_copy():
    found = gates(
        {
            "internal/inflect/.travis.yml": ("language: go\n", ""),
            "internal/inflect/plural_test.go": (
                'package inflect\n\nfunc TestPlural(t *testing.T) {\n\tif Plural("box") != "boxes" {\n'
                '\t\tt.Error("box")\n\t}\n}\n',
                "",
            ),
        }
    )
    assert not {"tests_weakened", "tests_without_code"} & found


GO_IF_REPORTS = """package shop

func TestCompare(t *testing.T) {
	for _, c := range cases {
		ok := compare(c.left, c.right)
		if !ok {
			t.Errorf("%v and %v should compare", c.left, c.right)
		}
		got := kind(c.left)
		if got != c.kind {
			t.Error("kind not in list")
		}
	}
}
"""


def test_go_if_reports_rewritten_as_assertions_of_the_same_names_are_no_edit():
    rewritten = GO_IF_REPORTS.replace(
        '\t\tif !ok {\n\t\t\tt.Errorf("%v and %v should compare", c.left, c.right)\n\t\t}\n', "\t\tTrue(t, ok)\n"
    ).replace('\t\tif got != c.kind {\n\t\t\tt.Error("kind not in list")\n\t\t}\n', "\t\tEqual(t, c.kind, got)\n")
    assert not {"tests_weakened", "tests_without_code"} & gates({"shop/compare_test.go": (GO_IF_REPORTS, rewritten)})


def test_a_go_if_report_rewritten_onto_another_value_is_still_an_edit():
    rewritten = GO_IF_REPORTS.replace(
        '\t\tif got != c.kind {\n\t\t\tt.Error("kind not in list")\n\t\t}\n', "\t\tNotNil(t, got)\n"
    )
    assert "tests_without_code" in gates({"shop/compare_test.go": (GO_IF_REPORTS, rewritten)})


def test_a_catch_clause_only_renamed_catches_nothing_more():
    renamed = UPLOAD_TEST.replace("(PayloadTooLargeException expected)", "(PayloadTooLargeException e)").replace(
        "expected.status()", "e.status()"
    )
    assert "tests_weakened" not in gates({"src/test/java/UploadTest.java": (UPLOAD_TEST, renamed)})


REDOS_TEST = """test("redos checker", () => {
  for (const input of slowInputs) {
    expect(datetime.safeParse(input).success).toBe(false);
  }
});
"""


@pytest.mark.parametrize(
    ("after", "loosened"),
    [
        pytest.param(REDOS_TEST.replace("\n});\n", "\n}, 10000);\n"), True, id="a limit above the default"),
        pytest.param(REDOS_TEST.replace("\n});\n", "\n}, 1000);\n"), False, id="a limit below the default"),
    ],
)
def test_a_javascript_test_given_more_time_than_before_is_loosened(after, loosened):
    found = gates({"tests/datetime.test.ts": (REDOS_TEST, after)})
    assert ("tests_weakened" in found) is loosened


def test_a_pytest_timeout_raised_is_loosened_and_lowered_is_not():
    before = "import pytest\n\n\n@pytest.mark.timeout(5)\ndef test_sync():\n    assert sync() == 3\n"
    assert "tests_weakened" in gates({"tests/test_sync.py": (before, before.replace("timeout(5)", "timeout(30)"))})
    assert "tests_weakened" not in gates({"tests/test_sync.py": (before, before.replace("timeout(5)", "timeout(2)"))})


def test_a_test_switched_back_on_may_check_less_than_its_ignored_version():
    before = (
        "public class FifthsTest {\n  @Ignore\n  @Test public void everyInt() {\n"
        "    for (long i = 0; i <= Integer.MAX_VALUE; i++) {\n      assertEquals(expected(i), fifths(i));\n"
        "    }\n  }\n}\n"
    )
    after = (
        "public class FifthsTest {\n  @Test public void everyInt() {\n"
        '    for (int i = 0; i >= 0; i += 7) {\n      if (expected(i) != fifths(i)) fail("differs at " + i);\n'
        "    }\n  }\n}\n"
    )
    assert "tests_weakened" not in gates({"src/test/java/FifthsTest.java": (before, after)})


def test_tests_kept_in_a_block_comment_are_no_tests():
    before = (
        '#[test]\nfn splits() {\n    assert_eq!(split("ab"), ("a", "b"));\n}\n\n'
        '/*\n#[test]\nfn unsplits() {\n    assert_eq!(unsplit("a", "b"), "ab");\n}\n*/\n'
    )
    after = '#[test]\nfn splits() {\n    assert_eq!(split("ab"), ("a", "b"));\n}\n'
    assert not {"tests_weakened", "tests_without_code"} & gates({"tests/split.rs": (before, after)})


def test_an_imperative_xfail_taken_out_with_its_guard_is_no_edit():
    before = (
        'def test_annotations(slots):\n    if NEW_PYTHON and not slots:\n        pytest.xfail("broken there")\n'
        '    assert annotations(C) == {"x": int}\n'
    )
    after = 'def test_annotations(slots):\n    assert annotations(C) == {"x": int}\n'
    assert not {"tests_weakened", "tests_without_code"} & gates({"tests/test_annotations.py": (before, after)})


def test_a_narrower_catch_in_place_of_its_parent_widens_nothing():
    narrower = UPLOAD_TEST.replace("(PayloadTooLargeException expected)", "(UploadLimitException expected)")
    assert "tests_weakened" not in gates({"src/test/java/UploadTest.java": (UPLOAD_TEST, narrower)})
    wider = UPLOAD_TEST.replace(
        "(PayloadTooLargeException expected)", "(PayloadTooLargeException | IOException expected)"
    )
    assert "tests_weakened" in gates({"src/test/java/UploadTest.java": (UPLOAD_TEST, wider)})


def test_a_line_that_only_loses_a_modifier_or_gains_a_cast_is_no_edit():
    java = "class ParserTest {\n  private JsonParser parser;\n\n  @Test void reads() {\n    assertEquals(1, parser.read());\n  }\n}\n"
    assert "tests_without_code" not in gates(
        {"src/test/java/ParserTest.java": (java, java.replace("  private JsonParser", "  JsonParser"))}
    )
    ts = "test('spies', () => {\n  const spy = sinon.spy(agent, 'addRequest');\n  expect(spy.called).toBe(true);\n});\n"
    assert "tests_without_code" not in gates(
        {"test/agent.test.ts": (ts, ts.replace("'addRequest')", "'addRequest' as any)"))}
    )
    changed = ts.replace("sinon.spy(agent, 'addRequest')", "sinon.spy(pool, 'addRequest')")
    assert "tests_without_code" in gates({"test/agent.test.ts": (ts, changed)})


def test_a_rust_module_of_re_exports_removed_is_no_edit():
    before = 'mod lib {\n    pub use std::vec::Vec;\n}\n\n#[test]\nfn parses() {\n    assert_eq!(parse("1"), 1);\n}\n'
    after = '#[test]\nfn parses() {\n    assert_eq!(parse("1"), 1);\n}\n'
    assert "tests_without_code" not in gates({"tests/lexical.rs": (before, after)})
