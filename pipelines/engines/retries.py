"""How long a step waits before its next attempt: KFP v2 retry policies
(``backoffDuration``, ``backoffFactor``, ``backoffMaxDuration``) and Argo retry strategies
(``backoff.duration``, ``factor``, ``maxDuration``)."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: Any, default: float = 0.0) -> float:
    """A KFP ("10s") or Argo ("10", "1m30s") duration in seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or not text.strip():
        return default
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def backoff_seconds(policy: dict, attempt: int, is_v2: bool) -> float:
    """The wait before attempt ``attempt + 1``: duration * factor^(attempt - 1), capped."""
    if is_v2:
        base = duration_seconds(policy.get("backoffDuration"))
        factor = float(policy.get("backoffFactor") or 2.0)
        cap = duration_seconds(policy.get("backoffMaxDuration"), 3600.0)
    else:
        backoff = policy.get("backoff") or {}
        base = duration_seconds(backoff.get("duration"))
        factor = float(backoff.get("factor") or 1.0)  # Argo: no factor, no growth
        cap = duration_seconds(backoff.get("maxDuration"), 3600.0)
    return min(base * factor ** max(attempt - 1, 0), cap)
