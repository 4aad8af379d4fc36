"""Rust's built-in tests: #[test], assert macros, #[ignore], cfg gates and rustversion."""

from goals.testcode import Framework, Language

SUFFIXES = (".rs",)

RUST_TEST = Framework(
    name="rust test",
    assertions=(
        r"\b(?:debug_)?assert(?:_eq|_ne|_matches)?!\s*[\(\[]",
        r"\bpanic!\s*\(",
        r"#\[should_panic\b",
        r"\.unwrap_err\s*\(",
        # A call of the test's own checking helper (`check_number(1u8, 5);`) is a check.
        r"^(?:check|assert|verify)_\w+\s*\(",
    ),
    skips=(
        r"#\[ignore\b",
        r"#\[cfg_attr\s*\([^]]{0,200}?\bignore\b",
        r"#\[cfg\s*\(",
        r"#\[rustversion::\w+",
        r"\brustversion::cfg!\s*\(",
        r"\bcfg!\s*\(",
    ),
    definitions=(r"^#\[(?:\w+::)?test\b",),
    content=(r"^#\[(?:\w+::)?test\b", r"^#\[cfg\(test\)\]", r"^mod\s+tests?\s*\{"),
)

# A `use`, an `extern crate` or a module declaration (`mod lib {` of re-exports) only brings names in.
LANGUAGE = Language(
    "rust",
    (RUST_TEST,),
    imports=r"^(?:pub(?:\([\w:]+\))?\s+)?(?:use\b|mod\s+(?!tests?\b)\w+\s*[;{]$)|^extern\s+crate\b",
)
