"""Settings for the test run: the real ones, with a throwaway data dir."""

import os
import tempfile

os.environ.setdefault("KFDASH_DATA_DIR", tempfile.mkdtemp(prefix="kfdash-test-"))

from dashboard.settings import *  # noqa: F403

# Hashing passwords properly is slow by design; the tests log in a lot.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
