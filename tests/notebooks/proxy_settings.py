"""Settings of the real kfdash servers in the proxy tests: the real ones, with the
"local" platform's spawner replaced by one that only points at servers the tests
started themselves (tests/notebooks/jupyter.py). Select with
``DJANGO_SETTINGS_MODULE=tests.notebooks.proxy_settings``."""

from dashboard.settings import *  # noqa: F403
from notebooks import spawners

spawners.SPAWNERS["local"] = "tests.notebooks.jupyter.FixedEndpointSpawner"
