"""kfdash settings: one file, read from the environment.

Every setting a deployment may change is an environment variable documented in
README.md. Bad values stop the process at start-up with a message that says
which variable is wrong, instead of failing later on a request. Secrets also
accept a ``<NAME>_FILE`` variant (a path to a file holding the value), as
Kubernetes secrets are usually mounted as files.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from dashboard.host_limits import memory_bytes

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.str(name, default=default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


# --- mode, data ----------------------------------------------------------------

KFDASH_PLATFORM = env_choice("KFDASH_PLATFORM", ("local", "kubernetes"), "local")
KFDASH_AUTH = env_choice("KFDASH_AUTH", ("local", "oidc", "header"), "local")
DATA_DIR = Path(env.str("KFDASH_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """A configured key, or in local mode one generated once and kept in the data dir."""
    key = env_secret("SECRET_KEY")
    if key:
        return key
    if KFDASH_PLATFORM != "local":
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set in kubernetes mode: every replica "
            "needs the same key to read each other's sessions."
        )
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()

_default_hosts = ["localhost", "127.0.0.1", "[::1]"]
_host = env.str("HOST", default="")
if _host and _host not in ("0.0.0.0", "::"):
    _default_hosts.append(_host)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=_default_hosts)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS hardening is on when the dashboard is deployed under real host names with
# DEBUG off (ALLOWED_HOSTS set explicitly), and off for the loopback laptop set-up
# that `make run` gives, where there is no TLS. KFDASH_HTTPS overrides either way.
KFDASH_HTTPS = env.bool("KFDASH_HTTPS", default=not DEBUG and "ALLOWED_HOSTS" in os.environ)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = KFDASH_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("KFDASH_SESSION_AGE", default=14 * 24 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page's Content-Security-Policy (django-csp): scripts only from kfdash itself (no
# inline script anywhere), no plugins, not framed by anyone. Styles may be inline because
# plotly.js injects its stylesheet; images may be data:/blob: URLs (chart downloads); the
# graph layout runs in a worker. Views that need more say so (the compare page's WebGL
# chart), and a step's HTML output sets a stricter policy of its own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "frame-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    },
}
if KFDASH_HTTPS:
    # TLS normally ends at an ingress/proxy in front of kfdash, which says so here.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("KFDASH_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # kubelet probes speak plain HTTP
    SECURE_HSTS_SECONDS = env.int("KFDASH_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("KFDASH_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("KFDASH_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a decision for a whole registrable domain, taken by its owner
        # (KFDASH_HSTS_PRELOAD=1), not by one app on a subdomain.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- applications --------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "mozilla_django_oidc",
    "dashboard",
    "notebooks",
    "pipelines",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.auth.header.TrustedHeaderMiddleware",
    "dashboard.auth.oidc.RefreshSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "dashboard.database_errors.DatabaseUnavailableMiddleware",  # last: sees views' errors
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.layout",
            ],
        },
    },
]

# --- database, channel layer ---------------------------------------------------

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'kfdash.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the engine, the scheduler and the web server write without
    # "database is locked" errors; a busy timeout rides out short write bursts.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env.float("KFDASH_SQLITE_BUSY_TIMEOUT", default=20.0),
    }
    # Past it a request answers 503 (dashboard/database_errors.py), not a long hang.
    if DATABASES["default"]["OPTIONS"]["timeout"] <= 0:
        raise ImproperlyConfigured("KFDASH_SQLITE_BUSY_TIMEOUT must be a positive number "
                                   "of seconds.")
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Requests computed at once (dashboard/request_limit.py): more wait on the event loop
# without a thread, so that it keeps its turns at the GIL to serve websockets.
KFDASH_REQUEST_CONCURRENCY = env.int("KFDASH_REQUEST_CONCURRENCY", default=8)
if KFDASH_REQUEST_CONCURRENCY <= 0:
    raise ImproperlyConfigured("KFDASH_REQUEST_CONCURRENCY must be a positive number.")

# Events a page may fall behind before the layer drops what comes next, without telling
# anyone (channels' default is 100: a runs list under load reached it, tests/test_load.py).
LIVE_EVENTS_QUEUED = 1000
_channel_layer_url = env.str("CHANNEL_LAYER_URL", default="")
if _channel_layer_url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Pages wait for events in 5 s blocking pops (channels_redis' brpop_timeout);
            # redis-py 8 times out socket reads at 5 s by default, which ended every idle
            # page's socket with a TimeoutError. Reads get longer than a pop.
            "CONFIG": {"hosts": [{"address": _channel_layer_url, "socket_timeout": 15}],
                       "capacity": LIVE_EVENTS_QUEUED},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                  "CONFIG": {"capacity": LIVE_EVENTS_QUEUED}}}

# --- identity --------------------------------------------------------------------

AUTH_USER_MODEL = "dashboard.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = {
    "local": ["django.contrib.auth.backends.ModelBackend"],
    "oidc": ["dashboard.auth.oidc.EmailOIDCBackend"],
    "header": ["dashboard.auth.header.TrustedHeaderBackend"],
}[KFDASH_AUTH]

# Trusted identity header, as Kubeflow's Istio / oauth2-proxy set-up provides it.
KFDASH_USERID_HEADER = env.str("KFDASH_USERID_HEADER", default="kubeflow-userid")
KFDASH_USERID_PREFIX = env.str("KFDASH_USERID_PREFIX", default="")
KFDASH_TRUSTED_PROXY = env.bool("KFDASH_TRUSTED_PROXY", default=False)
if KFDASH_AUTH == "header" and not KFDASH_TRUSTED_PROXY:
    raise ImproperlyConfigured(
        "KFDASH_AUTH=header trusts whoever sends the "
        f"'{KFDASH_USERID_HEADER}' header to be that user. Only run it behind an "
        "authenticating proxy that sets the header and strips it from clients, and "
        "say so with KFDASH_TRUSTED_PROXY=1."
    )

# OpenID Connect (Dex or any provider): endpoints come from the issuer's discovery
# document (dashboard/auth/oidc.py), so only the issuer and the client are set here.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET")
if KFDASH_AUTH == "oidc" and not (OIDC_ISSUER and OIDC_RP_CLIENT_ID):
    raise ImproperlyConfigured("KFDASH_AUTH=oidc needs OIDC_ISSUER and OIDC_CLIENT_ID.")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile groups")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", default="RS256")
OIDC_VERIFY_KID = env.bool("OIDC_VERIFY_KID", default=True)
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
OIDC_STORE_ID_TOKEN = True  # needed as id_token_hint when ending the provider session
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env.int("OIDC_RENEW_SECONDS", default=15 * 60)
OIDC_OP_LOGOUT_URL_METHOD = "dashboard.auth.oidc.provider_logout_url"
if OIDC_ISSUER:  # logging out posts to kfdash, which sends the browser on to the provider
    _issuer = urlsplit(OIDC_ISSUER)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(
        f"{_issuer.scheme}://{_issuer.netloc}")
OIDC_CALLBACK_CLASS = "dashboard.auth.oidc.CallbackView"
OIDC_AUTHENTICATE_CLASS = "dashboard.auth.oidc.AuthenticateView"
LOGIN_REDIRECT_URL_FAILURE = "/login/"
# Pages that never bounce through the provider to renew the session: API calls
# carry their own credentials, probes and assets need none.
OIDC_EXEMPT_URLS = [re.compile(r"^/(api|apis|static|healthz|readyz|login|logout)(/|$)")]
# OIDC users in these groups are cluster admins (see every namespace).
KFDASH_ADMIN_GROUPS = env.list("KFDASH_ADMIN_GROUPS", default=[])
# Audiences accepted for bearer JWTs on the API (the client id by default).
OIDC_API_AUDIENCES = env.list(
    "OIDC_API_AUDIENCES", default=[OIDC_RP_CLIENT_ID] if OIDC_RP_CLIENT_ID else []
)

# First start with no user: this admin is created and its password printed once.
KFDASH_ADMIN_EMAIL = env.str("KFDASH_ADMIN_EMAIL", default="admin@example.com")

# --- namespaces, layout ----------------------------------------------------------

# Kubernetes: cluster roles that contributors' RoleBindings point at (Kubeflow's).
KFDASH_CLUSTER_ROLES = {
    "admin": env.str("KFDASH_CLUSTERROLE_ADMIN", default="kubeflow-admin"),
    "edit": env.str("KFDASH_CLUSTERROLE_EDIT", default="kubeflow-edit"),
    "view": env.str("KFDASH_CLUSTERROLE_VIEW", default="kubeflow-view"),
}
KUBECONFIG = env.str("KUBECONFIG", default="")


def _external_links() -> list[dict[str, str]]:
    raw = env.str("KFDASH_EXTERNAL_LINKS", default="[]")
    try:
        links = json.loads(raw)
        if not isinstance(links, list) or not all(
            isinstance(link, dict) and isinstance(link.get("text"), str)
            and isinstance(link.get("url"), str) for link in links
        ):
            raise ValueError("expected a list of {\"text\": ..., \"url\": ...}")
    except ValueError as exc:
        raise ImproperlyConfigured(f"KFDASH_EXTERNAL_LINKS is not valid: {exc}") from exc
    return links


KFDASH_EXTERNAL_LINKS = _external_links()

# --- notebooks -------------------------------------------------------------------

# The "New notebook" form's defaults and options (Kubeflow's spawner_ui_config.yaml).
KFDASH_SPAWNER_CONFIG = env.str("KFDASH_SPAWNER_CONFIG", default="")
# Kubernetes mode: create Kubeflow Notebook objects (the notebook controller is
# installed), else a StatefulSet and a Service per notebook.
KFDASH_NOTEBOOK_CRD = env.bool("KFDASH_NOTEBOOK_CRD", default=True)
# Seconds a new local notebook server may take to answer before it counts as failed.
KFDASH_NOTEBOOK_START_TIMEOUT = env.float("KFDASH_NOTEBOOK_START_TIMEOUT", default=60.0)
# Idle culling (off by default, as in Kubeflow): stop servers idle this long (0 = never).
KFDASH_CULL_IDLE_SECONDS = env.int("KFDASH_CULL_IDLE_SECONDS", default=0)
# How often running servers are asked for their last activity.
KFDASH_CULL_CHECK_SECONDS = env.int("KFDASH_CULL_CHECK_SECONDS", default=60)
# Local mode: the VS Code (code-server) and RStudio (rserver) programs; empty = look on
# PATH and where their packages install them. Without one, that server type is offered
# disabled, with the reason.
KFDASH_CODE_SERVER = env.str("KFDASH_CODE_SERVER", default="")
KFDASH_RSERVER = env.str("KFDASH_RSERVER", default="")
# How notebook servers reach this dashboard's API (kfp.Client in a notebook).
KFDASH_INTERNAL_URL = env.str(
    "KFDASH_INTERNAL_URL", default=f"http://127.0.0.1:{env.str('PORT', default='8000')}"
).rstrip("/")

# --- pipelines -------------------------------------------------------------------

# The largest pipeline package accepted, compressed or not (KFP's limit is 32 MB).
KFDASH_MAX_PIPELINE_BYTES = env.int("KFDASH_MAX_PIPELINE_BYTES", default=32 * 1024 * 1024)
if KFDASH_MAX_PIPELINE_BYTES <= 0:
    raise ImproperlyConfigured("KFDASH_MAX_PIPELINE_BYTES must be a positive number of bytes.")
# "Upload from a URL" may fetch from loopback and private networks (a cluster's metadata
# service, internal services): fine on one's own machine, not in a shared cluster.
KFDASH_FETCH_PRIVATE_URLS = env.bool("KFDASH_FETCH_PRIVATE_URLS",
                                     default=KFDASH_PLATFORM == "local")
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024


def _positive(name: str, value: float, *, zero_ok: bool = False) -> float:
    """``value``, refused at start-up when negative (or zero, unless that means "off")."""
    if value < 0 or (value == 0 and not zero_ok):
        allowed = "a positive number or 0" if zero_ok else "a positive number"
        raise ImproperlyConfigured(f"{name} must be {allowed}.")
    return value


# Recurring runs: each server process schedules (KFDASH_SCHEDULER=off leaves it to
# `manage.py run_scheduler`), looking for due slots this often.
KFDASH_SCHEDULER = env.bool("KFDASH_SCHEDULER", default=True)
KFDASH_SCHEDULER_SECONDS = _positive(
    "KFDASH_SCHEDULER_SECONDS", env.float("KFDASH_SCHEDULER_SECONDS", default=1.0))

# The local engine (pipelines/engines/local.py): steps of all runs running at once.
KFDASH_RUN_PARALLELISM = int(_positive(
    "KFDASH_RUN_PARALLELISM", env.int("KFDASH_RUN_PARALLELISM", default=os.cpu_count() or 1)))
# The Python interpreter of steps, by absolute path (a shim such as pyenv's costs ~60 ms a
# step); "python3"/"python" in a step's command mean it. Empty: the dashboard's own.
KFDASH_STEP_PYTHON = env.str("KFDASH_STEP_PYTHON", default="")
if KFDASH_STEP_PYTHON and not (os.path.isabs(KFDASH_STEP_PYTHON)
                               and os.access(KFDASH_STEP_PYTHON, os.X_OK)):
    raise ImproperlyConfigured(
        f"KFDASH_STEP_PYTHON={KFDASH_STEP_PYTHON!r} must be the absolute path of an executable.")
# Keep at most this much of a step attempt's output (its head and its tail).
KFDASH_MAX_LOG_BYTES = int(_positive(
    "KFDASH_MAX_LOG_BYTES", env.int("KFDASH_MAX_LOG_BYTES", default=10 * 1024 * 1024)))
if KFDASH_MAX_LOG_BYTES < 4096:
    raise ImproperlyConfigured("KFDASH_MAX_LOG_BYTES must be at least 4096.")
# Seconds a step attempt may run (0 = no limit); a v1 template's activeDeadlineSeconds or
# a kfp-kubernetes timeout on the task wins.
KFDASH_STEP_TIMEOUT = _positive(
    "KFDASH_STEP_TIMEOUT", env.float("KFDASH_STEP_TIMEOUT", default=24 * 3600.0), zero_ok=True)
# Seconds between SIGTERM and SIGKILL when a step is terminated or times out.
KFDASH_STEP_KILL_GRACE = _positive(
    "KFDASH_STEP_KILL_GRACE", env.float("KFDASH_STEP_KILL_GRACE", default=10.0), zero_ok=True)
# How v1 (Argo) steps get private copies of the absolute paths they declare: "namespace"
# (a user and mount namespace per step), "rewrite" (paths rewritten in the command), or
# "auto" (namespace when this host allows it unprivileged, else rewrite).
KFDASH_STEP_ISOLATION = env_choice("KFDASH_STEP_ISOLATION", ("auto", "namespace", "rewrite"),
                                   "auto")
# KFP v2 Python components start as forks of a Python that has imported the KFP executor
# (saves ~70 ms a step); 0 starts a fresh interpreter for each.
KFDASH_STEP_WARM_PYTHON = env.bool("KFDASH_STEP_WARM_PYTHON", default=True)
# The memory limit of steps that set none of their own (a Kubernetes quantity, "2Gi"),
# enforced as theirs are: a cgroup per step where the host allows, else RLIMIT_AS.
KFDASH_LOCAL_STEP_MEMORY_LIMIT = env.str("KFDASH_LOCAL_STEP_MEMORY_LIMIT", default="").strip()
try:
    memory_bytes(KFDASH_LOCAL_STEP_MEMORY_LIMIT)
except ValueError as exc:
    raise ImproperlyConfigured(f"KFDASH_LOCAL_STEP_MEMORY_LIMIT: {exc} (e.g. 2Gi).") from None

# --- cluster watchers (kubernetes mode) ---------------------------------------------

# Of several replicas, the holder of this Lease runs the cluster watchers
# (dashboard/leader.py); with it off, every process watches.
KFDASH_LEADER_ELECTION = env.bool("KFDASH_LEADER_ELECTION",
                                  default=KFDASH_PLATFORM == "kubernetes")
KFDASH_LEADER_LEASE = env.str("KFDASH_LEADER_LEASE", default="kfdash-leader")
# Default: the namespace kfdash's pod runs in (its service account's), else "kubeflow".
KFDASH_LEADER_NAMESPACE = env.str("KFDASH_LEADER_NAMESPACE", default="")

# --- pipelines on Argo (kubernetes mode) -------------------------------------------

# The service account a run's pods get when the run names none (Kubeflow's per-namespace
# account for pipelines).
KFDASH_ARGO_SERVICE_ACCOUNT = env.str("KFDASH_ARGO_SERVICE_ACCOUNT", default="default-editor")
# Argo deletes a finished run's Workflow this many seconds after it ends (KFP's
# TTL_SECONDS_AFTER_WORKFLOW_FINISH, same default: a day), so finished Workflows do not pile
# up in etcd. kfdash has recorded the run by then; only retry needs the Workflow. 0 keeps
# Workflows for ever. A package that sets its own ttlStrategy keeps it.
KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED = int(_positive(
    "KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED",
    env.int("KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED", default=24 * 3600), zero_ok=True))
# Argo's podGC strategy for step pods, so finished pods do not pile up in namespaces ("" keeps
# them). A package that sets its own podGC keeps it.
_POD_GC_STRATEGIES = ("OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion",
                      "OnWorkflowSuccess")
KFDASH_ARGO_POD_GC_STRATEGY = env.str("KFDASH_ARGO_POD_GC_STRATEGY",
                                      default="OnPodCompletion").strip()
if KFDASH_ARGO_POD_GC_STRATEGY not in ("", *_POD_GC_STRATEGIES):
    raise ImproperlyConfigured(
        f"KFDASH_ARGO_POD_GC_STRATEGY={KFDASH_ARGO_POD_GC_STRATEGY!r} is not one of Argo's "
        f"podGC strategies ({', '.join(_POD_GC_STRATEGIES)}), or empty to keep pods.")
# How long a pod Argo is to delete stays (podGC.deleteDelayDuration, Argo >= 3.5; a Go
# duration such as "90s", "5m"): the watcher copies a step's log from its pod when it sees
# the step end, which takes a moment, and longer while the watcher reconnects or a new
# leader takes over. With no delay, a log could go with its pod before it is kept.
KFDASH_ARGO_POD_GC_DELAY = env.str("KFDASH_ARGO_POD_GC_DELAY", default="5m").strip()
if KFDASH_ARGO_POD_GC_DELAY and not re.fullmatch(
        r"0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+", KFDASH_ARGO_POD_GC_DELAY):
    raise ImproperlyConfigured(
        f"KFDASH_ARGO_POD_GC_DELAY={KFDASH_ARGO_POD_GC_DELAY!r} is not a duration such as "
        "'90s', '5m' or '1h30m'.")
# Where steps' output artifacts go: an S3-compatible store, configured like KFP's MinIO.
# The secret (in each profile namespace) holds the keys under these two names.
KFDASH_ARTIFACT_S3_ENDPOINT = env.str("KFDASH_ARTIFACT_S3_ENDPOINT",
                                      default="minio-service.kubeflow:9000")
KFDASH_ARTIFACT_S3_BUCKET = env.str("KFDASH_ARTIFACT_S3_BUCKET", default="mlpipeline")
KFDASH_ARTIFACT_S3_INSECURE = env.bool("KFDASH_ARTIFACT_S3_INSECURE", default=True)
KFDASH_ARTIFACT_S3_REGION = env.str("KFDASH_ARTIFACT_S3_REGION", default="")
KFDASH_ARTIFACT_S3_SECRET = env.str("KFDASH_ARTIFACT_S3_SECRET",
                                    default="mlpipeline-minio-artifact")
KFDASH_ARTIFACT_S3_ACCESS_KEY_KEY = env.str("KFDASH_ARTIFACT_S3_ACCESS_KEY_KEY",
                                            default="accesskey")
KFDASH_ARTIFACT_S3_SECRET_KEY_KEY = env.str("KFDASH_ARTIFACT_S3_SECRET_KEY_KEY",
                                            default="secretkey")
KFDASH_ARTIFACT_KEY_PREFIX = env.str("KFDASH_ARTIFACT_KEY_PREFIX", default="artifacts")
# kfdash's own keys to read outputs back (previews, charts, downloads); empty: boto3's usual
# chain (AWS_* variables, a web identity, an instance role).
KFDASH_ARTIFACT_S3_ACCESS_KEY = env.str("KFDASH_ARTIFACT_S3_ACCESS_KEY", default="")
KFDASH_ARTIFACT_S3_SECRET_KEY = env.str("KFDASH_ARTIFACT_S3_SECRET_KEY", default="")
# The most kfdash copies out of the store (unpacked) to show one artifact; larger ones are
# still downloadable, streamed from the store.
KFDASH_ARTIFACT_FETCH_MAX_BYTES = env.int("KFDASH_ARTIFACT_FETCH_MAX_BYTES",
                                          default=64 * 1024 * 1024)
# The image whose init container puts the KFP v2 launcher into each step's pod: kfdash's
# own image (it holds pipelines/engines/kfdash_launcher.py).
KFDASH_LAUNCHER_IMAGE = env.str("KFDASH_LAUNCHER_IMAGE", default="kfdash:latest")

# --- REST API --------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dashboard.auth.api.ApiTokenAuthentication",
        "dashboard.auth.api.OIDCBearerAuthentication",
        "dashboard.auth.api.TrustedHeaderAuthentication",
        "dashboard.auth.api.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["dashboard.api.parsers.JSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "dashboard.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kfdash API",
    "DESCRIPTION": "kfdash: namespaces, contributors, API tokens and notebooks (/api/v1), "
                   "and the Kubeflow Pipelines API (/apis/v2beta1, /apis/v1beta1).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from the drf-spectacular-sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "dashboard.api.schema.document_errors"],
}

# --- static files, i18n, logging ---------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise expects it even when serving from the finders
# Served straight from the finders: no collectstatic step, assets come from the
# repo and from installed packages.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
