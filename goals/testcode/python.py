"""pytest and unittest."""

from goals.testcode import Framework, Language

SUFFIXES = (".py", ".pyi")

PYTEST = Framework(
    name="pytest",
    assertions=(
        r"^assert\b",
        r"\bpytest\.(?:raises|warns|fail|deprecated_call)\s*\(",
        r"^with\s+raises\s*\(",
    ),
    skips=(
        r"\bpytest\.(?:skip|xfail|importorskip)\s*\(",
        r"\bpytest\.mark\.(?:skip|skipif|xfail)\b",
        r"^@(?:mark\.)?(?:skip|skipif|xfail)\b",
        r"\bimportorskip\s*\(",
    ),
    definitions=(r"^(?:async\s+)?def\s+test\w*\s*\(",),
)

UNITTEST = Framework(
    name="unittest",
    assertions=(r"\bself\.assert[A-Z_]\w*\s*\(", r"\bassert[A-Z]\w*\s*\(", r"\bself\.fail\s*\("),
    skips=(
        r"@(?:unittest\.)?skip(?:If|Unless)?\b",
        r"\.skipTest\s*\(",
        r"@(?:unittest\.)?expectedFailure\b",
        r"\braise\s+(?:unittest\.)?SkipTest\b",
    ),
    definitions=(),
)

LANGUAGE = Language("python", (PYTEST, UNITTEST), comments=("#",))
