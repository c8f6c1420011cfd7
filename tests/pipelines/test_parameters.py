"""A run's parameters: typed values from the API and from the form, every problem named."""

import pytest
from django.core.exceptions import ValidationError

from pipelines.parameters import as_text, resolve
from pipelines.specs.model import Parameter, PipelineSpec


def spec(*parameters: Parameter) -> PipelineSpec:
    return PipelineSpec(format="kfp-v2", name="p", parameters=list(parameters))


TYPED = spec(
    Parameter("s", "STRING", "hi", has_default=True),
    Parameter("n", "NUMBER_INTEGER", 3.0, has_default=True),  # IR integer defaults are floats
    Parameter("f", "NUMBER_DOUBLE", 0.5, has_default=True),
    Parameter("b", "BOOLEAN", False, has_default=True),
    Parameter("l", "LIST", [1], has_default=True),
    Parameter("d", "STRUCT", {"a": 1}, has_default=True),
)


def errors(exc: pytest.ExceptionInfo) -> dict[str, list[str]]:
    return exc.value.message_dict


def test_it_fills_in_defaults():
    assert resolve(TYPED, None) == {"s": "hi", "n": 3.0, "f": 0.5, "b": False, "l": [1],
                                    "d": {"a": 1}}


def test_it_takes_native_values_from_the_api():
    given = {"s": "x", "n": 7, "f": 2, "b": True, "l": ["a"], "d": {}}
    assert resolve(TYPED, given) == {"s": "x", "n": 7, "f": 2.0, "b": True, "l": ["a"], "d": {}}


def test_it_takes_the_strings_v1_clients_send():
    assert resolve(TYPED, {"n": "7", "f": "1.5", "b": "true", "l": "[2]", "d": '{"k": 1}'}) \
        == {"s": "hi", "n": 7, "f": 1.5, "b": True, "l": [2], "d": {"k": 1}}


def test_it_parses_what_a_person_typed():
    typed = {"s": " spaced ", "n": " 12 ", "f": "3", "b": "false", "l": "[1, 2]", "d": ""}
    assert resolve(TYPED, typed, from_text=True) == {
        "s": " spaced ", "n": 12, "f": 3.0, "b": False, "l": [1, 2], "d": {"a": 1}}


def test_it_names_every_wrong_value_at_once():
    with pytest.raises(ValidationError) as exc:
        resolve(TYPED, {"n": 1.5, "f": "abc", "b": "yes", "l": {"not": "a list"}, "d": "[1",
                        "s": 5, "extra": 1})
    found = errors(exc)
    assert set(found) == {"n", "f", "b", "l", "d", "s", "extra"}
    assert "'n' must be an integer, not 1.5." in found["n"]
    assert "'d' must be a JSON object (this is not valid JSON)." in found["d"]
    assert "no parameter 'extra'" in found["extra"][0]


def test_it_refuses_booleans_as_numbers_and_infinities():
    with pytest.raises(ValidationError) as exc:
        resolve(TYPED, {"n": True, "f": float("inf")})
    assert set(errors(exc)) == {"n", "f"}


def test_it_wants_required_values_and_lets_optional_ones_go():
    required = spec(Parameter("must", "STRING"), Parameter("may", "STRING", optional=True))
    with pytest.raises(ValidationError) as exc:
        resolve(required, {})
    assert errors(exc) == {"must": ["The parameter 'must' needs a value."]}
    # An empty text box is a value for a required string (KFP passes "" through).
    assert resolve(required, {"must": ""}, from_text=True) == {"must": ""}


def test_it_shows_values_as_a_person_would_type_them():
    by_name = {p.name: p for p in TYPED.parameters}
    assert as_text(by_name["n"], 3.0) == "3"
    assert as_text(by_name["b"], True) == "true"
    assert as_text(by_name["d"], {"a": 1}) == '{"a": 1}'
    assert as_text(by_name["s"], None) == ""
