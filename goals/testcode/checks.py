"""How specific a check is, whatever the framework: the family of comparison it makes (equality, strict
equality, exception type, message), wildcards that accept anything, the values it expects and the ranges and
tolerances it allows. Two versions of a check are compared here to say whether the new one is looser."""

from __future__ import annotations

import math
import re

_STRING_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\\n]|\\.)*`')
_NUMBER_LITERAL = re.compile(r"(?<![\w.)\]])-?\d\w*(?:\.\d\w*)*(?:(?<=[eE])[-+]\d+)?")
_KEYWORD_LITERAL = re.compile(r"\b(?:True|False|None|true|false|null|nil|undefined|NaN)\b")
_LITERAL = re.compile(f"{_STRING_LITERAL.pattern}|{_NUMBER_LITERAL.pattern}|{_KEYWORD_LITERAL.pattern}")

# Each family names a precise kind of check; an assertion that loses a family while keeping its
# shape has been loosened: `==` becomes `>=` or `in`, `toEqual` becomes `toBeTruthy`.
FAMILIES = {
    "equality": re.compile(
        r"(?<![!<>=])==(?!=)|(?<![!=])===|\bassert(?:Equals?|ListEqual|DictEqual|TupleEqual|SetEqual"
        r"|SequenceEqual|MultiLineEqual|CountEqual|Is|IsNone|IsNot|NotEqual|NotIn)\b"
        r"|\.(?:toBe|toEqual|toStrictEqual|toHaveBeenCalledWith|toHaveBeenLastCalledWith"
        r"|toHaveBeenNthCalledWith|toHaveBeenCalledTimes|toHaveLength|toMatchObject|toMatchSnapshot"
        r"|toMatchInlineSnapshot|toBeNull|toBeUndefined|toBeNaN)\s*\("
        r"|\.(?:equal|equals|eql|strictEqual|deepEqual|deepStrictEqual|notEqual|isEqualTo|containsExactly)\s*\("
        r"|\bt\.(?:is|not|deepEqual|notDeepEqual|snapshot)\s*\("
        r"|\b(?:assert|require)\.(?:Equal|Equalf|EqualValues|EqualValuesf|Exactly|EqualError|JSONEq|YAMLEq"
        r"|ElementsMatch|Len|Same|NotEqual)\b|\bassert_(?:eq|ne)!"
        r"|(?<![\w.])(?:Equal|Equalf|EqualValues|EqualValuesf|Exactly|EqualError|JSONEq|YAMLEq|ElementsMatch|Len|Same"
        r"|NotEqual)\s*\(\s*t\s*,"
        r"|\bassert_equal\b|\bassertEquals\b|(?<![!<>=])!=(?!=)|!=="
        # RSpec's expect syntax: `.to eq(x)`, `.not_to eql x`, `.to be_nil`, `.to be_true`.
        r"|\.(?:to|not_to|to_not)\s*\(?\s*(?:(?:eq|eql|equal|be_true|be_false|be_nil|be\s+(?:true|false|nil))\b|be\s*===?)",
    ),
    "strict": re.compile(
        # Ruby's `x.should === y` is case equality, not a strict one.
        r"\.(?:toStrictEqual|strictEqual|deepStrictEqual)\s*\(|(?<!\bshould )(?<!\bshould_not )===|!=="
        r"|\bassertIs\b|\.Exactly\b|\.(?:to|not_to|to_not)\s+(?:be\s+(?:true|false|nil)|equal)\b"
    ),
    "exception type": re.compile(
        r"\b(?:raises|assertRaises|assertRaisesRegex)\s*\(\s*(?!(?:Base)?Exception\b)[A-Za-z_]"
        r"|\.toThrow(?:Error)?\s*\(\s*[^)\s]|\b(?:assert|require)\.(?:ErrorIs|ErrorAs|EqualError|ErrorContains)\b"
    ),
    "message": re.compile(r"\bmatch\s*=|\bassertRaisesRegex\b|\.toThrow(?:Error)?\s*\(\s*['\"/`]"),
}
WILDCARD = re.compile(
    r"\bor\s+True\b|\|\|\s*true\b|\bmock\.ANY\b|\bANY\b|\bexpect\.any(?:thing)?\s*\(|\bmock\.Anything\b"
)
# A line that sets the value a test expects: `expected = 5`, `want := "x"`, `{in: 2, want: 4}`.
_EXPECTATION = re.compile(r"\b(?:want|wanted|expected|expect|exp)(?:[A-Z_]\w*)?\s*(?::=|=(?!=)|:(?!:))")
# A line that sets how far a result may stray: a tolerance, epsilon, delta or number of places.
_TOLERANCE = re.compile(
    r"(?i)(?:\b|_)(?:tol|tolerance|eps|epsilon|delta|rtol|atol|rel_tol|abs_tol|margin|slack)\b"
)
_PLACES = re.compile(r"(?i)\b(?:places|decimal|digits|precision)\b")
_COMPARISON = re.compile(r"(?<![\w.\])])([\w.\])]+)\s*(<=|>=|<|>|===|==)\s*(-?\d+(?:\.\d+)?)\b(?!\s*[-+*/])")
_COMPARISON_REVERSED = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*(<=|>=|<|>|===|==)\s*([\w.]+)")
_EQUALITY_CALL = re.compile(
    r"\b(?:t\.is|assert_eq!|assertEquals?|assert\.(?:Equal|equal|strictEqual))\s*\(\s*([\w.]+)\s*,\s*(-?\d+(?:\.\d+)?)\s*[,)]"
    r"|\bexpect\s*\(\s*([\w.]+)\s*\)\.(?:toBe|toEqual)\s*\(\s*(-?\d+(?:\.\d+)?)\s*\)"
)
_REVERSED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "===": "==="}
_STRICTLY = 1e-9


def literal_value(literal: str) -> str:
    if literal[:1] in "\"'`" and len(literal) >= 2:
        return literal[1:-1]
    return literal


def compact(text: str) -> str:
    """A line with all whitespace removed, for comparing lines whatever their indentation."""
    return "".join(text.split())


def skeleton(text: str) -> tuple[str, tuple[str, ...]]:
    """The line with every literal replaced by a placeholder, and the literals' values in order."""
    values = tuple(literal_value(match.group(0)) for match in _LITERAL.finditer(text))
    return compact(_LITERAL.sub("\x00", text)), values


def literals(text: str) -> list[str]:
    """The literal values a line names."""
    return [literal_value(match.group(0)) for match in _LITERAL.finditer(text)]


_CALL = re.compile(r"\b\w+\s*\(")
_BARE_NAME = re.compile(r"^[A-Za-z_]\w*$")


def operands(text: str) -> list[str]:
    """The compared expressions of a check written as a call, whitespace removed: its arguments except bare
    names (the test's handle, a variable). ``Equal(t, &T{}, []int{1})`` gives ``&T{}`` and ``[]int{1}``."""
    match = _CALL.search(text)
    if match is None:
        return []
    found, depth, current = [], 0, []
    for char in text[match.end() :]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                found.append("".join(current))
                break
            depth -= 1
        elif char == "," and depth == 0:
            found.append("".join(current))
            current = []
            continue
        current.append(char)
    else:
        return []
    parts = [compact(part) for part in found]
    return [part for part in parts if part and not _BARE_NAME.match(part)]


def families(text: str) -> set[str]:
    """The precise kinds of check a line makes."""
    return {name for name, pattern in FAMILIES.items() if pattern.search(text)}


def is_expectation(text: str) -> bool:
    """Whether the line sets an expected value (``want := 3``) or a tolerance, or compares against a number
    (a helper's ``abs(a - b) < 0.001``)."""
    return bool(
        _EXPECTATION.search(text)
        or _TOLERANCE.search(text)
        or _PLACES.search(text)
        or _COMPARISON.search(text)
    )


def _number(text: str) -> float | None:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value_loosened(old_line: str, old: str, new: str) -> bool:
    """Whether one literal of a line, all else equal, now lets more through."""
    old_number, new_number = _number(old), _number(new)
    if old_number is not None and new_number is not None:
        position = old_line.find(old)
        before = old_line[:position].rstrip() if position >= 0 else ""
        if _TOLERANCE.search(old_line):
            return abs(new_number) > abs(old_number)
        if _PLACES.search(old_line):
            return new_number < old_number
        if before.endswith(("<", "<=")):
            return new_number > old_number
        if before.endswith((">", ">=")):
            return new_number < old_number
        return False
    if old_number is None and new_number is None and old != new:
        # An expected text cut down to a part of itself, or emptied, matches more than it did.
        return bool(old) and (not new or (new in old and len(new) < len(old)))
    return False


def value_changed(removed: str, added: str) -> bool:
    """Whether the two lines make the same check against different values (`== 5` against `== 6`)."""
    removed_skeleton, removed_values = skeleton(removed)
    added_skeleton, added_values = skeleton(added)
    return removed_skeleton == added_skeleton and removed_values != added_values


def weakening_of(removed: str, added: str) -> str | None:
    """How a replaced check changed for the worse, or None: a value or tolerance that now lets more
    through, or a check that lost its precise kind or gained a wildcard."""
    removed_skeleton, removed_values = skeleton(removed)
    added_skeleton, added_values = skeleton(added)
    if removed_skeleton == added_skeleton:
        loosened = any(
            _value_loosened(removed, old, new) for old, new in zip(removed_values, added_values, strict=False)
        )
        return "expected value loosened" if loosened else None
    # Checking for a named exception instead of a value is a change of subject, not a looser check.
    raises_now = "exception type" in families(added) - families(removed)
    if families(removed) - families(added) and not raises_now:
        return "assertion loosened"
    if WILDCARD.search(added) and not WILDCARD.search(removed):
        return "assertion loosened"
    return None


def _narrow(ranges: dict[str, list[float]], name: str, operator: str, value: float) -> None:
    low, high = ranges.setdefault(name, [-math.inf, math.inf])
    if operator in ("==", "==="):
        low, high = max(low, value), min(high, value)
    elif operator == ">=":
        low = max(low, value)
    elif operator == ">":
        low = max(low, value + _STRICTLY)
    elif operator == "<=":
        high = min(high, value)
    elif operator == "<":
        high = min(high, value - _STRICTLY)
    ranges[name] = [low, high]


def ranges(lines: list[str]) -> dict[str, list[float]]:
    """The numeric range each name is checked against across the lines: `n >= 2 && n <= 3` gives n in
    [2, 3], `t.is(n, 1)` gives n in [1, 1]."""
    found: dict[str, list[float]] = {}
    for line in lines:
        for name, operator, value in _COMPARISON.findall(line):
            number = _number(value)
            if number is not None:
                _narrow(found, name, operator, number)
        for value, operator, name in _COMPARISON_REVERSED.findall(line):
            number = _number(value)
            if number is not None:
                _narrow(found, name, _REVERSED[operator], number)
        for match in _EQUALITY_CALL.finditer(line):
            name, value = (
                (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
            )
            number = _number(value)
            if number is not None:
                _narrow(found, name, "==", number)
    return found


def ranges_widened(removed: list[str], added: list[str]) -> list[str]:
    """Names whose checked range grew from the removed checks to the added ones."""
    before, after = ranges(removed), ranges(added)
    return [
        name
        for name, (low, high) in before.items()
        if name in after
        and after[name][0] <= low
        and after[name][1] >= high
        and (after[name][0] < low or after[name][1] > high)
    ]
