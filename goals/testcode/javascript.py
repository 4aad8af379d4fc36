"""Jest, Vitest, Mocha with Chai, and AVA (node:test reads like Mocha)."""

from goals.testcode import Framework, Language

SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue", ".svelte")

_BLOCKS = r"(?:it|test|describe|context|suite|specify)"
# A test-defining call: the usual names, or a project's own wrapper named like one (`browserTest('…'`).
_DEFINITION = rf"^(?:{_BLOCKS}|\w+Test|\w+_test)(?:\.\w+)*\s*\(\s*['\"`]"

JEST = Framework(
    name="jest",
    assertions=(r"\bexpect(?:\.assertions)?\s*\(", r"\bexpect\.\w+\s*\("),
    skips=(
        rf"\b{_BLOCKS}\.(?:skip|todo|failing)\b",
        rf"\bx{_BLOCKS}\s*\(",
        rf"\b{_BLOCKS}\.concurrent\.(?:skip|todo|failing)\b",
    ),
    focus=(rf"\b{_BLOCKS}\.only\b", r"\bf(?:it|describe|test)\s*\("),
    definitions=(_DEFINITION, rf"^x{_BLOCKS}\s*\(", r"^f(?:it|describe|test)\s*\("),
)

VITEST = Framework(
    name="vitest",
    assertions=(r"\bexpectTypeOf\s*\(", r"\bassertType\s*\("),
    skips=(rf"\b{_BLOCKS}\.(?:skipIf|runIf|fails)\b", r"\b(?:ctx|context)\.skip\s*\("),
)

MOCHA_CHAI = Framework(
    name="mocha/chai",
    assertions=(r"\bassert(?:\.\w+)*\s*\(", r"\.should\b", r"\bshould\.\w+", r"\.expect\s*\("),
    skips=(r"\bthis\.skip\s*\(", rf"\b{_BLOCKS}\.skip\b", r"\bthis\.retries\s*\("),
    focus=(r"\.only\s*\(",),
)

AVA = Framework(
    name="ava",
    assertions=(
        r"\bt\.(?:is|not|deepEqual|notDeepEqual|like|true|false|truthy|falsy|throws|throwsAsync|notThrows"
        r"|notThrowsAsync|regex|notRegex|snapshot|fail|assert|plan)\s*\(",
    ),
    skips=(r"\btest\.(?:serial\.)?(?:skip|failing|todo)\b", r"\bt\.(?:skip|failing)\b"),
    focus=(r"\btest\.(?:serial\.)?only\b",),
)

LANGUAGE = Language("javascript", (JEST, VITEST, MOCHA_CHAI, AVA), imports=r"^import\b|\brequire\s*\(")
