"""JUnit 4 and 5 (with Truth, AssertJ and Hamcrest assertions); Kotlin and Groovy read the same."""

from goals.testcode import Framework, Language

SUFFIXES = (".java", ".kt", ".kts", ".groovy", ".scala")

JUNIT = Framework(
    name="junit",
    assertions=(
        r"\bassert\w*\s*\(",
        r"^assert\b",
        r"\bfail\s*\(",
        r"\bverify\s*\(",
        r"^\.(?:is|has|contains|doesNot|matches|startsWith|endsWith|containsExactly)\w*\s*\(",
    ),
    skips=(
        r"@(?:Ignore|Disabled\w*|EnabledOn\w+|EnabledIf\w*|EnabledFor\w+)\b",
        r"\bassume(?:True|False|That|NotNull|NoException)\s*\(",
        # A project's own assumption helper (`platform.assumeNotConscrypt()`) stops the test the same way.
        r"\bassume[A-Z]\w*\s*\(",
        # A flaky tag reruns or excuses a failing test.
        r"@(?:Flaky|RetryingTest)\b",
        r"\bAssume\.\w+",
        r"\bAssumptions\.\w+",
    ),
    definitions=(r"^@(?:Test|ParameterizedTest|RepeatedTest|TestFactory|TestTemplate)\b",),
    content=(r"^@(?:Test|ParameterizedTest|RepeatedTest)\b",),
)

LANGUAGE = Language("java", (JUNIT,), imports=r"^import\b")
