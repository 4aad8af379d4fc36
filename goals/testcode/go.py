"""Go's testing package (with testify's assert and require, and go-cmp)."""

from goals.testcode import Framework, Language

SUFFIXES = (".go",)

# The names of testify's assert/require checks.
TESTIFY = (
    r"True|False|Nil|NotNil|Empty|NotEmpty|Zero|NotZero|Len|Contains|NotContains|Subset|NotSubset"
    r"|Equal|EqualValues|EqualError|Exactly|NotEqual|NotEqualValues|Same|NotSame|ElementsMatch|JSONEq|YAMLEq"
    r"|Error|NoError|ErrorIs|NotErrorIs|ErrorAs|ErrorContains|Panics|PanicsWithValue|PanicsWithError|NotPanics"
    r"|Greater|GreaterOrEqual|Less|LessOrEqual|Positive|Negative|InDelta|InEpsilon|WithinDuration|Regexp"
    r"|NotRegexp|IsType|Implements|Eventually|Never|Condition|FileExists|DirExists|Fail|FailNow"
)

GO_TESTING = Framework(
    name="go testing",
    assertions=(
        r"\b\w+\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\s*\(",
        r"\b(?:require|assert)\.\w+\s*\(",
        # testify's checks called unqualified (inside its own package, or dot-imported): `True(t, ok)`.
        rf"^(?:{TESTIFY})f?\s*\(\s*t\s*,",
        r"\bExpect\s*\(",
        # The condition of an `if got != want { t.Errorf(...) }` check (not the everyday `if err != nil`).
        r"^if\b(?!.*\berr\w*\s*[!=]=\s*nil\b).*(?:==|!=|<|>|\bDeepEqual\b|\bcmp\.Diff\b|\bEqual\b).*\{$",
    ),
    skips=(r"\b\w+\.Skip(?:f|Now)?\s*\(", r"\btesting\.Short\s*\(\s*\)", r"^//go:build\b", r"^// \+build\b"),
    definitions=(r"^func\s+(?:Test|Benchmark|Fuzz|Example)\w*\s*\(", r"^\w+\.Run\s*\(\s*[\"`\w]"),
    content=(r"^func\s+Test\w*\s*\(\s*\w+\s+\*testing\.T\s*\)",),
)

LANGUAGE = Language("go", (GO_TESTING,), imports=r"^import\b|^\"[\w./-]+\"$")
