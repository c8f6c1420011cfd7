# kfdash's image for kubernetes mode (deploy/ has the manifests; README "Deploying on a
# cluster"). Two stages: node installs the browser assets with the Makefile's own `vendor`
# target (so the list of files copied lives in one place), then a slim Python image runs
# the dashboard as a non-root user. No collectstatic: WhiteNoise serves from the finders.

# --- stage 1: third-party browser assets (npm ci as package-lock.json pins them) --------
FROM node:22.12.0-bookworm AS vendor
WORKDIR /src
COPY Makefile package.json package-lock.json ./
COPY .ci/system-deps .ci/system-deps
# `make vendor` finds npm (so installs nothing) and fills static/vendor/.
RUN make vendor

# --- stage 2: the dashboard ------------------------------------------------------------
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KFDASH_PLATFORM=kubernetes \
    KFDASH_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    MALLOC_ARENA_MAX=2 \
    HOME=/tmp

# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it; group 0 lets clusters
# that pick their own uid (OpenShift) still write the data dir.
RUN useradd --uid 10001 --gid 0 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kfdash \
    && mkdir -p /data \
    && chown 10001:0 /data \
    && chmod 0770 /data

WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY manage.py ./
COPY dashboard ./dashboard
COPY notebooks ./notebooks
COPY pipelines ./pipelines
COPY templates ./templates
COPY static ./static
COPY --from=vendor /src/static/vendor ./static/vendor
# The root filesystem is read-only in the cluster: compile the bytecode now.
RUN python -m compileall -q /app

USER 10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# One process per pod (uvicorn's --workers >= 2 leaves TCP_NODELAY off, see DESIGN.md):
# scale with replicas. --proxy-headers takes the client address and scheme from the
# ingress; which peers may set them is FORWARDED_ALLOW_IPS (the ConfigMap sets it).
CMD ["uvicorn", "dashboard.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--no-server-header", "--timeout-graceful-shutdown", "5"]
