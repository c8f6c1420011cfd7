"""Conditions are evaluated by a parser of their own: what the kfp 2 compiler writes (CEL),
Argo ``when`` after substitution, and Argo ``depends``; never Python's eval."""

import pytest

from pipelines.engines.expressions import ExpressionError, evaluate

CHANNEL = "inputs.parameter_values['pipelinechannel--n-Output']"


@pytest.mark.parametrize(("text", "values", "expected"), [
    (f"int({CHANNEL}) > 2", {"pipelinechannel--n-Output": 3}, True),
    (f"int({CHANNEL}) > 2", {"pipelinechannel--n-Output": "3"}, True),
    (f"!(int({CHANNEL}) > 2) && int({CHANNEL}) == 1", {"pipelinechannel--n-Output": 1}, True),
    (f"!(int({CHANNEL}) > 2) && !(int({CHANNEL}) == 1)", {"pipelinechannel--n-Output": 7},
     False),
    (f"{CHANNEL} == 'heads'", {"pipelinechannel--n-Output": "heads"}, True),
    (f"double({CHANNEL}) >= 0.5", {"pipelinechannel--n-Output": 0.5}, True),
    (f"{CHANNEL} == true", {"pipelinechannel--n-Output": True}, True),
    (f"{CHANNEL} != null && int({CHANNEL}) > 2", {"pipelinechannel--n-Output": None}, False),
    ("101 > 10", {}, True),
    ('"heads" == "heads"', {}, True),
    ("tails == heads", {}, False),
    ("5 > 10 || 'a' < 'b'", {}, True),
    ("-1 < 0", {}, True),
])
def test_it_evaluates_what_the_compilers_write(text, values, expected):
    assert evaluate(text, values) is expected


def test_it_answers_argo_depends_through_the_names_it_is_given():
    states = {"a.Succeeded": True, "b.Failed": False, "c": True}
    assert evaluate("a.Succeeded && !b.Failed", names=states.get)
    assert not evaluate("(a.Succeeded && b.Failed) || !c", names=states.get)


@pytest.mark.parametrize("text", [
    "1 +", "int(", "__import__('os').system('true')", "open('x') == 1", '"a" < 3', "3",
    f"{CHANNEL} > 1", "inputs.other['x'] == 1", "int('x') == 1",
])
def test_it_refuses_what_it_cannot_read_or_evaluate(text):
    with pytest.raises(ExpressionError):
        evaluate(text, {})
