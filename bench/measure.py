"""Timing helpers the bench scripts share: repeats after a warm-up, medians and p95s,
SQL query counts and full garbage collections of in-process Django requests, and a
markdown table for bench/RESULTS.md. Import after ``django.setup()``."""

from __future__ import annotations

import gc
import statistics
import time

from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def repeat(function, times: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        function()
    result = []
    for _ in range(times):
        began = time.perf_counter()
        function()
        result.append(time.perf_counter() - began)
    return result


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, what: str, times: list[float], size: int | None = None,
            queries: int | None = None, items: int | None = None,
            full_gcs: int | None = None) -> None:
        self.rows.append((what, times, size, queries, items, full_gcs))
        extra = ""
        if items is not None:
            extra += f", {items} rows"
        if size is not None:
            extra += f", {size / 1024:.1f} KiB"
        if queries is not None:
            extra += f", {queries} queries"
        if full_gcs:
            extra += f", {full_gcs} full GCs"
        print(f"  {what}: p50 {ms(statistics.median(times))} ms, p95 "
              f"{ms(quantile(times, 0.95))} ms, min-max {ms(min(times))}-{ms(max(times))} ms "
              f"(of {len(times)}){extra}", flush=True)

    def markdown(self) -> str:
        lines = ["| what | rows | n | p50 ms | p95 ms | min-max ms | size | queries | full GCs |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for what, times, size, queries, items, full_gcs in self.rows:
            lines.append(
                f"| {what} | {'' if items is None else items} | {len(times)} | "
                f"{ms(statistics.median(times))} | {ms(quantile(times, 0.95))} | "
                f"{ms(min(times))}-{ms(max(times))} | "
                f"{'' if size is None else f'{size / 1024:.1f} KiB'} | "
                f"{'' if queries is None else queries} | {full_gcs} |")
        return "\n".join(lines)


def get(client: Client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}: "
                         f"{response.content[:500]!r}")
    return response


def measure_get(table: Table, client: Client, what: str, url: str, times: int,
                show_queries: bool = False, count=None):
    """``count(response)``: how many rows the page holds, for the table. Also counted:
    the full (generation 2) garbage collections during the repeats (and their warm-up),
    the usual tail."""
    reset_queries()  # the client's request_started resets the log: start from empty
    with CaptureQueriesContext(connection) as captured:
        response = get(client, url)
    if show_queries:
        for query in captured.captured_queries:
            print(f"      {query['time']}s {query['sql'][:300]}")
    queries = len(captured.captured_queries)  # read before the next request resets the log
    items = count(response) if count else None
    collections = gc.get_stats()[2]["collections"]
    timings = repeat(lambda: get(client, url), times, warmup=1)
    table.add(what, timings, len(response.content), queries, items,
              gc.get_stats()[2]["collections"] - collections)
    return response
