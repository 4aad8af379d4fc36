"""Go's testing package (with testify's assert and require, and go-cmp)."""

from goals.testcode import Framework, Language

SUFFIXES = (".go",)

GO_TESTING = Framework(
    name="go testing",
    assertions=(
        r"\b\w+\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)\s*\(",
        r"\b(?:require|assert)\.\w+\s*\(",
        r"\bExpect\s*\(",
        # The condition of an `if got != want { t.Errorf(...) }` check (not the everyday `if err != nil`).
        r"^if\b(?!.*\berr\w*\s*[!=]=\s*nil\b).*(?:==|!=|<|>|\bDeepEqual\b|\bcmp\.Diff\b|\bEqual\b).*\{$",
    ),
    skips=(r"\b\w+\.Skip(?:f|Now)?\s*\(", r"\btesting\.Short\s*\(\s*\)", r"^//go:build\b", r"^// \+build\b"),
    definitions=(r"^func\s+(?:Test|Benchmark|Fuzz|Example)\w*\s*\(", r"^\w+\.Run\s*\(\s*[\"`\w]"),
    content=(r"^func\s+Test\w*\s*\(\s*\w+\s+\*testing\.T\s*\)",),
)

LANGUAGE = Language("go", (GO_TESTING,), imports=r"^import\b|^\"[\w./-]+\"$")
