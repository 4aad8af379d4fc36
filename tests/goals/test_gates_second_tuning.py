"""Kinds of test rewrite met in the second tuning round, each written here in our own words as a small file
before and after: the gates must tell a same-strength rewrite from a weakening."""

from goals.testcode import analyser_for, checks
from tests.support.diffs import gates

GO_IF_CHAIN = """package shop

import "testing"

func TestSame(t *testing.T) {
	if !Same(t, "apple", "apple") {
		t.Error("Same should say yes")
	}
	if !Same(t, &Basket{}, &Basket{}) {
		t.Error("Same should say yes for two empty baskets")
	}
	if Same(t, 4, uint(4)) {
		t.Error("Same should say no")
	}
}
"""

GO_TABLE = """package shop

import "testing"

func TestSame(t *testing.T) {
	cases := []struct {
		left, right interface{}
		same        bool
	}{
		{"apple", "apple", true},
		{&Basket{}, &Basket{}, true},
		{4, uint(4), false},
	}
	for _, c := range cases {
		if got := Same(t, c.left, c.right); got != c.same {
			t.Errorf("Same(%v, %v) = %v", c.left, c.right, got)
		}
	}
}
"""


def test_a_go_if_chain_folded_into_a_table_is_no_weakening():
    # Each `if cond {` + `t.Error("…")` pair is one check; its message need not come back word for word.
    assert "tests_weakened" not in gates({"shop/same_test.go": (GO_IF_CHAIN, GO_TABLE)})


def test_a_go_if_chain_cut_short_is_still_a_weakening():
    shorter = GO_TABLE.replace("\t\t{4, uint(4), false},\n", "")
    assert "tests_weakened" in gates({"shop/same_test.go": (GO_IF_CHAIN, shorter)})


def test_operands_of_a_check_leave_out_bare_names():
    assert checks.operands("if !Same(t, &Basket{}, []int{1, 2}) {") == ["&Basket{}", "[]int{1,2}"]
    assert checks.operands("Same(t, got)") == []


RB_SPEC = """describe Basket do
  it "weighs its apples" do
    expect(Basket.new(apples: 2).weight).to eq(300)
  end
end
"""


def test_rspec_conditional_metadata_on_an_existing_example_is_a_skip():
    guarded = RB_SPEC.replace('it "weighs its apples" do', 'it "weighs its apples", :unless => slow_scale? do')
    assert "tests_weakened" in gates({"spec/basket_spec.rb": (RB_SPEC, guarded)})
    guarded = RB_SPEC.replace("describe Basket do", "describe Basket, if: scale_present? do")
    assert "tests_weakened" in gates({"spec/basket_spec.rb": (RB_SPEC, guarded)})


def test_rspec_pending_metadata_of_a_project_on_an_existing_example_is_a_skip():
    guarded = RB_SPEC.replace('it "weighs its apples" do', 'it "weighs its apples", :pending_on_old_scales do')
    assert "tests_weakened" in gates({"spec/basket_spec.rb": (RB_SPEC, guarded)})


def test_rspec_ordinary_metadata_is_no_skip():
    tagged = RB_SPEC.replace('it "weighs its apples" do', 'it "weighs its apples", :slow, type: :model do')
    assert "tests_weakened" not in gates({"spec/basket_spec.rb": (RB_SPEC, tagged)})


JAVA_TEST = """package shop;

import org.junit.Test;

public class BasketTest {
  @Test public void weighsApples() {
    assertEquals(300, new Basket(2).weight());
  }
}
"""


def test_a_projects_own_assumption_helper_on_an_existing_junit_test_is_a_skip():
    assumed = JAVA_TEST.replace("    assertEquals", "    scales.assumeCalibrated();\n    assertEquals")
    assert "tests_weakened" in gates({"src/test/java/shop/BasketTest.java": (JAVA_TEST, assumed)})


def test_a_flaky_tag_on_an_existing_junit_test_is_a_skip():
    tagged = JAVA_TEST.replace("  @Test public", "  @Flaky\n  @Test public")
    assert "tests_weakened" in gates({"src/test/java/shop/BasketTest.java": (JAVA_TEST, tagged)})


def test_a_call_that_merely_starts_with_assume_is_no_skip():
    assert not analyser_for("T.java").is_skip("basket.assumed(2);")


RB_SHOULD = """describe Basket do
  it "should weigh its apples" do
    Basket.new(apples: 2).weight.should == 300
    Basket.new.empty?.should === true
  end
end
"""
RB_EXPECT = """describe Basket do
  it "should weigh its apples" do
    expect(Basket.new(apples: 2).weight).to eq(300)
    expect(Basket.new.empty?).to be_true
  end
end
"""


def test_rspec_should_syntax_converted_to_expect_is_no_weakening():
    assert "tests_weakened" not in gates({"spec/basket_spec.rb": (RB_SHOULD, RB_EXPECT)})


def test_rspec_eq_loosened_to_truthy_is_a_weakening():
    loose = RB_EXPECT.replace(".to eq(300)", ".to be_truthy")
    assert "tests_weakened" in gates({"spec/basket_spec.rb": (RB_EXPECT, loose)})


def test_the_word_should_in_an_rspec_title_is_no_assertion():
    rb = analyser_for("t_spec.rb")
    assert not rb.is_assertion('it "should add a task" do')
    assert rb.is_assertion("basket.weight.should == 300")
    assert rb.is_assertion("it { should be_empty }")


def test_rspec_be_true_made_strict_is_no_weakening():
    strict = RB_EXPECT.replace("to be_true", "to be true")
    assert "tests_weakened" not in gates({"spec/basket_spec.rb": (RB_EXPECT, strict)})
    assert "tests_weakened" in gates({"spec/basket_spec.rb": (strict, RB_EXPECT)})


GO_REPORTS = """package check

import "testing"

func TestOrdered(t *testing.T) {
	for _, c := range cases {
		ok := ordered(c.a, c.b)
		if !ok {
			t.Errorf("%d and %d should be ordered", c.a, c.b)
		}
		if ok != c.want {
			t.Error("wrong answer")
		}
	}
}
"""
GO_TESTIFY_UNQUALIFIED = """package check

import "testing"

func TestOrdered(t *testing.T) {
	for _, c := range cases {
		ok := ordered(c.a, c.b)
		True(t, ok)
		Equal(t, c.want, ok)
	}
}
"""


def test_testify_checks_called_unqualified_are_assertions():
    go = analyser_for("x_test.go")
    assert go.is_assertion("True(t, ok)")
    assert go.is_assertion("require.NoError(t, err)")
    assert not go.is_assertion("Setup(t, dir)")
    assert "equality" in checks.families("\tEqual(t, c.want, ok)")


def test_go_if_reports_rewritten_as_unqualified_testify_checks_are_no_weakening():
    assert "tests_weakened" not in gates({"check/order_test.go": (GO_REPORTS, GO_TESTIFY_UNQUALIFIED)})


def test_go_if_report_dropped_without_replacement_is_a_weakening():
    dropped = GO_TESTIFY_UNQUALIFIED.replace("\t\tTrue(t, ok)\n", "")
    assert "tests_weakened" in gates({"check/order_test.go": (GO_REPORTS, dropped)})


AVA_TEST = """import test from 'ava';

test('weighs apples', t => {
\tt.is(weigh(2), 300);
});
"""


def test_an_early_return_a_few_lines_under_its_guard_is_a_skip():
    guarded = AVA_TEST.replace(
        "\tt.is(", "\tif (process.platform === 'darwin') {\n\t\tt.pass();\n\t\treturn;\n\t}\n\n\tt.is("
    )
    assert "tests_weakened" in gates({"test/weigh.ts": (AVA_TEST, guarded)})


def test_a_branch_that_checks_before_returning_is_no_skip():
    branch = AVA_TEST.replace(
        "\tt.is(", "\tif (process.platform === 'darwin') {\n\t\tt.is(weigh(0), 0);\n\t\treturn;\n\t}\n\n\tt.is("
    )
    assert "tests_weakened" not in gates({"test/weigh.ts": (AVA_TEST, branch)})
