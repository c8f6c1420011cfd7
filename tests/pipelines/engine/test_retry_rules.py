"""How long a retry waits (KFP v2 retry policies and Argo retry strategies), and how loop
items and outputs become the parameter types components declare."""

import pytest

from pipelines.engines.inputs import InputError, coerce
from pipelines.engines.retries import backoff_seconds, duration_seconds


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("2", 2), (3, 3),
    ("", 0), (None, 0), ("soon", 0), ("0s", 0),
])
def test_it_reads_kfp_and_argo_durations(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)


def test_kfp_backoff_grows_by_its_factor_up_to_its_cap():
    policy = {"maxRetryCount": 5, "backoffDuration": "10s", "backoffFactor": 2.0,
              "backoffMaxDuration": "30s"}
    assert [backoff_seconds(policy, attempt, True) for attempt in (1, 2, 3, 4)] == [
        10, 20, 30, 30]
    assert backoff_seconds({"maxRetryCount": 2}, 1, True) == 0


def test_argo_backoff_reads_its_retry_strategy():
    strategy = {"limit": 3, "backoff": {"duration": "1", "factor": 3, "maxDuration": "1m"}}
    assert [backoff_seconds(strategy, attempt, False) for attempt in (1, 2, 3, 4, 5)] == [
        1, 3, 9, 27, 60]
    assert backoff_seconds({"limit": 2}, 1, False) == 0
    steady = {"limit": 2, "backoff": {"duration": "5s"}}
    assert [backoff_seconds(steady, attempt, False) for attempt in (1, 2)] == [5, 5]


@pytest.mark.parametrize(("value", "kind", "expected"), [
    (3.0, "NUMBER_INTEGER", 3), ("4", "NUMBER_INTEGER", 4), (2, "NUMBER_DOUBLE", 2.0),
    ("true", "BOOLEAN", True), ("[1, 2]", "LIST", [1, 2]), ('{"a": 1}', "STRUCT", {"a": 1}),
    (5, "STRING", "5"), ({"a": 1}, "STRING", '{"a": 1}'), ("x", "STRING", "x"),
    (None, "NUMBER_INTEGER", None),
])
def test_values_take_the_declared_type(value, kind, expected):
    assert coerce(value, kind, "x") == expected


@pytest.mark.parametrize(("value", "kind"), [
    (2.5, "NUMBER_INTEGER"), ("x", "NUMBER_INTEGER"), (True, "NUMBER_INTEGER"),
    ("maybe", "BOOLEAN"), ("{}", "LIST"), ("nope", "STRUCT"),
])
def test_values_of_another_type_are_refused_by_name(value, kind):
    with pytest.raises(InputError, match="its input 'x' should be"):
        coerce(value, kind, "x")
