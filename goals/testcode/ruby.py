"""RSpec (and Minitest's assert_ family)."""

from goals.testcode import Framework, Language

SUFFIXES = (".rb",)

RSPEC = Framework(
    name="rspec",
    assertions=(
        r"\bexpect\s*[\({]",
        r"\bis_expected\b",
        r"\.(?:to|not_to|to_not)\b",
        # `x.should eq 1`, `it { should be_valid }`; not the word in a title ("should add a task").
        r"(?:^|\.|\{\s*)should(?:_not)?\b",
        r"\bassert(?:_\w+)?\b",
        r"\brefute(?:_\w+)?\b",
    ),
    skips=(
        r"^(?:skip|pending)\b",
        r"^x(?:it|describe|context|specify|example)\b",
        r"\b(?:skip|pending)\w*:\s*",
        r":(?:skip|pending)\w*\b",
        # Conditional metadata on an example or a group leaves it out where the condition says.
        r"^(?:it|describe|context|specify|example|scenario|feature)\b.*?(?:\b(?:if|unless):|:(?:if|unless)\s*=>)",
    ),
    focus=(r"^f(?:it|describe|context|specify|example)\b", r"\bfocus:\s*true\b", r":focus\b"),
    definitions=(r"^(?:it|specify|example|scenario)\b.*\bdo\b", r"^def\s+test_\w+"),
)

LANGUAGE = Language("ruby", (RSPEC,), comments=("#",), imports=r"^require(?:_relative)?\b")
