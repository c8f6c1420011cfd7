import pytest


@pytest.fixture
def spawner(monkeypatch):
    """Use the instant test spawner and run background work inline; returns the call log."""
    from notebooks import spawners, tasks
    from tests.notebooks import doubles

    monkeypatch.setitem(spawners.SPAWNERS, "local", "tests.notebooks.doubles.InstantSpawner")
    monkeypatch.setattr(tasks, "in_background", lambda work, *args: work(*args))
    doubles.calls.clear()
    return doubles.calls
