"""config/api.py: a body's validation error as one sentence naming the field, for the API's `{"error": reason}`."""

from typing import Literal

import pytest
from ninja import Field
from pydantic import ValidationError

from config.api import Body, readable


class Inner(Body):
    x: int


class Sample(Body):
    need: str
    tokens: int = Field(0, ge=0, le=10)
    name: str | None = Field(None, max_length=5)
    kind: Literal["a", "b"] | None = None
    tests: list[str] | None = None
    nested: Inner | None = None
    flag: bool = False


GOOD = {"need": "x"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param({}, "`need` is required.", id="missing"),
        pytest.param({**GOOD, "tokens": -1}, "`tokens` must be a whole number from 0 to 10.", id="below-the-range"),
        pytest.param({**GOOD, "tokens": True}, "`tokens` must be a whole number from 0 to 10.", id="a-boolean-for-a-number"),
        pytest.param({**GOOD, "tokens": "3"}, "`tokens` must be a whole number from 0 to 10.", id="a-string-for-a-number"),
        pytest.param({**GOOD, "name": "longer"}, "`name` must be a string of at most 5 characters, or null.", id="too-long"),
        pytest.param({**GOOD, "name": 5}, "`name` must be a string of at most 5 characters, or null.", id="not-a-string"),
        pytest.param({**GOOD, "kind": "c"}, "`kind` must be one of: a, b, or null.", id="not-a-choice"),
        pytest.param({**GOOD, "tests": "t"}, "`tests` must be a list of strings, or null.", id="not-a-list"),
        pytest.param({**GOOD, "tests": ["t", 1]}, "`tests` must be a list of strings.", id="an-item-not-a-string"),
        pytest.param({**GOOD, "nested": {"x": "1"}}, "`nested.x` must be a whole number.", id="nested-field"),
        pytest.param({**GOOD, "nested": []}, "`nested` must be an object, or null.", id="nested-not-an-object"),
        pytest.param({**GOOD, "flag": "yes"}, "`flag` must be true or false.", id="not-a-boolean"),
        pytest.param([1, 2], "The body must be a JSON object.", id="the-body-a-list"),
        pytest.param("text", "The body must be a JSON object.", id="the-body-a-string"),
    ],
)
def test_a_validation_error_reads_as_one_sentence_naming_the_field(body, reason):
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(body)
    assert readable(caught.value.errors()[0], Sample.model_json_schema()) == reason


def test_unknown_fields_are_ignored():
    assert Sample.model_validate({**GOOD, "future": {"a": 1}}).need == "x"
