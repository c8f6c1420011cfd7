"""Load: API clients and websocket pages against one fresh kfdash server, with the driver
``tests/test_load.py`` runs (``tests/load_driver.py``).

    .venv/bin/python bench/load.py [--clients 50] [--watchers 100] [--seconds 60]
        [--request-concurrency N]

The server is started as ``make run`` starts it (uvicorn, one process, the local engine,
``tests/servers.py``) on a free loopback port, with its SQLite database in a temporary
folder that is removed at the end. It is seeded with the tiny pipeline the runs start (one
Python component compiled by the kfp SDK), an experiment and 10 finished runs. Then
``--clients`` API clients (one keep-alive connection each, no pause between requests)
pick weighted KFP v2/v1 operations for ``--seconds`` (reads, and ~10% run creations),
while ``--watchers`` pages stay connected: a fifth of them runs lists, the others run
pages of 20 runs started as the load starts. Afterwards every run is waited for and every
page for the news of each run's end.

Prints the date, the machine and the versions, and a markdown table for
bench/RESULTS.md: per operation the count, errors and p50/p95/max latency; the time from
connecting a page to its first message; and from a run's ``finished_at`` (the server's
clock, this host's) to a runs list page reading that event. The driver shares the
machine's cores with the server. ``--request-concurrency`` sets the server's
``KFDASH_REQUEST_CONCURRENCY`` (e.g. 1000: unbounded, for comparison).
"""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import describe_machine  # noqa: E402  (bench/machine.py)

from tests.load_driver import markdown, run_load, seed, target_for  # noqa: E402
from tests.servers import start_kfdash  # noqa: E402

PACKAGES = ("uvicorn", "Django", "channels", "websockets", "aiohttp", "kfp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--request-concurrency", type=int,
                        help="the server's KFDASH_REQUEST_CONCURRENCY (default: its own)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="kfdash-bench-load-"))
    os.environ["TMPDIR"] = str(folder)  # the migrated template database goes there too
    env = ({"KFDASH_REQUEST_CONCURRENCY": str(args.request_concurrency)}
           if args.request_concurrency else {})
    server = None
    try:
        server = start_kfdash(folder / "kfdash", **env)
        target = target_for(server)
        seeded = asyncio.run(seed(target))
        print(f"load: {args.clients} clients, {args.watchers} pages, {args.seconds:g} s",
              flush=True)
        result = asyncio.run(run_load(target, seeded, args.clients, args.watchers,
                                      args.seconds))
        healthy = server.process.poll() is None and "Traceback" not in server.log()
    finally:
        if server:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(describe_machine(PACKAGES))
    if args.request_concurrency:
        print(f"KFDASH_REQUEST_CONCURRENCY={args.request_concurrency}")
    print(markdown(result))
    errors = result.all_errors()
    print(f"server {'healthy, no traceback logged' if healthy else 'NOT healthy'}; "
          f"{len(errors)} errors" + "".join(f"\n  {error}" for error in errors[:20]))


if __name__ == "__main__":
    main()
