"""Leader election on a Kubernetes ``Lease``, as client-go's ``leaderelection`` does it.

Several dashboard replicas may run; only one should run the cluster watchers (the
recurring-run scheduler is safe in every replica: each slot has one run). They agree through
one ``coordination.k8s.io/v1`` Lease in kfdash's own namespace, following client-go's
LeaseLock:

* A candidate takes the Lease when it is absent (creates it), free (``holderIdentity`` empty,
  as a released Lease is) or expired; a leader renews it every ``retry_period``.
* Expiry is judged by the local clock only, never by comparing the holder's ``renewTime``
  with our own clock (the two clocks may disagree): a candidate notes *when it last saw the
  record change* and deems the holder gone ``leaseDurationSeconds`` after that. So a new
  candidate waits a full lease duration even for a Lease that looks old.
* Every write carries the ``resourceVersion`` last read: of two candidates racing for the
  same Lease, the API server accepts one and answers 409 Conflict to the other, which does
  not lead.
* A leader that has not renewed for ``renew_deadline`` (< ``lease_duration``) stops leading
  before anyone else may take over; one that sees another holder stops at once.
* A clean stop ends the leader's work first, then releases the Lease (``holderIdentity``
  empty, ``leaseDurationSeconds`` 1, like client-go's ReleaseOnCancel) so another replica
  takes over within a retry period instead of a lease duration.

``leaseDurationSeconds`` is a whole number: the Lease records ``lease_duration`` rounded up,
and that recorded value is what the other candidates wait (sub-second timings are for tests).

:class:`LeaderElector` is the election; :class:`WorkerGroup` runs workers (threads with
``start``/``stop``, which cannot be restarted) made afresh for each term of leadership;
:func:`run_while_leading` puts the two together as the settings say.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dashboard import kube

log = logging.getLogger(__name__)

#: Where Kubernetes mounts the pod's namespace.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_LEASE = "kfdash-leader"
DEFAULT_NAMESPACE = "kubeflow"
#: Candidates retry after ``retry_period`` * (1 + up to this much), so they do not move in step.
JITTER = 1.2
#: The shortest a request may be given to answer.
MIN_REQUEST_SECONDS = 0.05


def pod_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The namespace this pod runs in, or None outside a cluster."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def default_identity() -> str:
    """Unique per process, and says which pod it is: hostname, pid and a random part."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


def micro_time(moment: datetime) -> str:
    """A ``MicroTime`` as the API server parses it: RFC 3339, always six fraction digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _call(callback: Callable[[], Any] | None, what: str) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:  # a broken callback must not stop the election
        log.exception("leader election: %s callback failed", what)


class LeaderElector(threading.Thread):
    """Takes and keeps the Lease ``namespace``/``name`` while running; ``stop()`` ends it.

    ``on_started_leading`` is called when this process becomes leader, ``on_stopped_leading``
    when it stops being leader (lost the Lease, or stopped); both run on this thread and must
    return promptly: renewals wait for them, and ``on_stopped_leading`` has
    ``lease_duration - renew_deadline`` before another replica may take over. A leader that
    lost the Lease keeps competing for it, so the pair may be called many times.

    Times are in seconds (floats allowed); they must satisfy
    ``lease_duration > renew_deadline > 1.2 * retry_period > 0``, as client-go requires.
    """

    def __init__(self, namespace: str, name: str = DEFAULT_LEASE, *,
                 identity: str | None = None, lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_started_leading: Callable[[], Any] | None = None,
                 on_stopped_leading: Callable[[], Any] | None = None) -> None:
        if not lease_duration > renew_deadline > JITTER * retry_period > 0:
            raise ValueError("leader election needs lease_duration > renew_deadline > "
                             f"{JITTER} * retry_period > 0")
        super().__init__(name=f"leader-{name}", daemon=True)
        self.namespace = namespace
        self.lease_name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._stopping = threading.Event()
        self._release_on_stop = True
        self._leading = False  # holds the Lease, as far as the protocol goes
        self._serving = False  # is_leader: leading, and the callbacks say so
        self._lease: Any = None  # the V1Lease last read or written (its resourceVersion)
        self._record: tuple | None = None  # the leader election fields last seen
        self._observed_at = 0.0  # monotonic time the record was last seen to change
        self._renewed_at = 0.0  # monotonic time our last successful write was sent

    @classmethod
    def from_settings(cls, **options: Any) -> LeaderElector:
        """An elector on the Lease the settings name: ``KFDASH_LEADER_NAMESPACE`` (default: the
        pod's namespace, else "kubeflow") and ``KFDASH_LEADER_LEASE`` ("kfdash-leader").
        ``options`` are the constructor's and win over the settings."""
        from django.conf import settings

        options.setdefault("namespace", getattr(settings, "KFDASH_LEADER_NAMESPACE", None)
                           or pod_namespace() or DEFAULT_NAMESPACE)
        options.setdefault("name", getattr(settings, "KFDASH_LEADER_LEASE", DEFAULT_LEASE))
        return cls(**options)

    # --- what callers read and do -----------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """True once ``on_started_leading`` has returned, until ``on_stopped_leading`` is
        about to be called."""
        return self._serving

    @property
    def holder(self) -> str:
        """The holder the Lease named when last read or written ("" when free or unknown)."""
        return self._record[0] if self._record else ""

    def stop(self, *, release: bool = True, timeout: float | None = None) -> None:
        """Stop competing: a leader stops leading (``on_stopped_leading``), then releases the
        Lease unless ``release`` is False (which leaves it to expire, as a crash would). Waits
        up to ``timeout`` for the thread to end."""
        self._release_on_stop = release
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def api(self) -> Any:
        """The client, asked for at each attempt so that ``kube.reset()`` is followed."""
        from kubernetes import client

        return client.CoordinationV1Api(kube.api_client())

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while self._acquire():
                self._lead()
        finally:
            if self._release_on_stop:
                self._release()

    def _acquire(self) -> bool:
        """Try every retry period (with jitter) until leader (True) or stopped (False)."""
        while not self._stopping.is_set():
            if self._attempt():
                return not self._stopping.is_set()
            self._stopping.wait(self.retry_period * (1 + random.random() * JITTER))
        return False

    def _lead(self) -> None:
        """Renew every retry period until stopped, beaten or past the renew deadline."""
        self._leading = True
        log.info("leader election: %s leads %s/%s", self.identity, self.namespace,
                 self.lease_name)
        _call(self.on_started_leading, "on_started_leading")
        self._serving = True
        try:
            while True:
                deadline = self._renewed_at + self.renew_deadline
                pause = min(self.retry_period, max(0.0, deadline - time.monotonic()))
                if self._stopping.wait(pause):
                    return
                if self._attempt():
                    continue
                if self.holder != self.identity:
                    log.warning("leader election: %s lost %s/%s to %r", self.identity,
                                self.namespace, self.lease_name, self.holder)
                    return
                if time.monotonic() >= self._renewed_at + self.renew_deadline:
                    log.warning("leader election: %s could not renew %s/%s for %.1f s; "
                                "no longer leading", self.identity, self.namespace,
                                self.lease_name, self.renew_deadline)
                    return
        finally:
            self._serving = self._leading = False
            _call(self.on_stopped_leading, "on_stopped_leading")

    # --- one attempt, as client-go's tryAcquireOrRenew ---------------------------------------

    def _attempt(self) -> bool:
        try:
            return self._try_acquire_or_renew()
        except Exception:  # a bug or an answer nobody expected: try again, never die
            log.exception("leader election: unexpected failure on %s/%s", self.namespace,
                          self.lease_name)
            return False

    def _try_acquire_or_renew(self) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self.api()
        started = time.monotonic()
        now = datetime.now(UTC)
        # A leader whose Lease is still valid writes straight from what it last wrote; the
        # resourceVersion makes that safe, and a failure falls back to reading the Lease.
        if self._leading and self._lease is not None and self._valid(started):
            try:
                self._write(api, self._lease, now, started)
                return True
            except Exception as exc:
                log.info("leader election: renewing %s/%s failed (%s); reading it",
                         self.namespace, self.lease_name, kube.error_message(exc))
        try:
            lease = api.read_namespaced_lease(self.lease_name, self.namespace,
                                              _request_timeout=self._timeout())
        except ApiException as exc:
            if exc.status != 404:
                return self._failed("reading", exc)
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.lease_name, namespace=self.namespace),
                spec=self._spec(None, now, acquired=now, transitions=0))
            try:
                created = api.create_namespaced_lease(self.namespace, body,
                                                      _request_timeout=self._timeout())
            except Exception as exc:  # 409 AlreadyExists: another candidate created it
                return self._failed("creating", exc)
            self._observe(created, started, written=True)
            return True
        except Exception as exc:  # unreachable, timed out
            return self._failed("reading", exc)
        self._observe(lease, time.monotonic())
        holder = self.holder
        if holder and holder != self.identity and self._valid(time.monotonic()):
            return False  # someone else holds it
        try:
            self._write(api, lease, now, started)
        except Exception as exc:  # 409 Conflict: someone else wrote it first
            return self._failed("updating", exc)
        return True

    def _write(self, api: Any, lease: Any, now: datetime, started: float) -> None:
        """Replace ``lease`` (with its resourceVersion) with us as holder, renewed ``now``."""
        from kubernetes import client

        spec = lease.spec or client.V1LeaseSpec()
        if spec.holder_identity == self.identity:
            # Our own Lease: the term goes on (acquireTime kept) if we still lead.
            acquired = spec.acquire_time if self._leading and spec.acquire_time else now
            transitions = spec.lease_transitions or 0
        else:
            acquired, transitions = now, (spec.lease_transitions or 0) + 1
        body = client.V1Lease(metadata=lease.metadata,
                              spec=self._spec(spec, now, acquired=acquired,
                                              transitions=transitions))
        written = api.replace_namespaced_lease(self.lease_name, self.namespace, body,
                                               _request_timeout=self._timeout())
        self._observe(written, started, written=True)

    def _release(self) -> None:
        """Give the Lease up, if the last record seen is still ours (client-go's release)."""
        if self._lease is None or self.holder != self.identity:
            return
        from kubernetes import client

        now = datetime.now(UTC)
        try:
            spec = self._spec(self._lease.spec, now, acquired=now,
                              transitions=self._lease.spec.lease_transitions or 0,
                              holder="", seconds=1)
            released = self.api().replace_namespaced_lease(
                self.lease_name, self.namespace,
                client.V1Lease(metadata=self._lease.metadata, spec=spec),
                _request_timeout=self.renew_deadline)
        except Exception as exc:  # it will expire instead
            log.warning("leader election: could not release %s/%s: %s", self.namespace,
                        self.lease_name, kube.error_message(exc))
            return
        self._observe(released, time.monotonic())
        log.info("leader election: %s released %s/%s", self.identity, self.namespace,
                 self.lease_name)

    # --- bookkeeping --------------------------------------------------------------------------

    def _spec(self, old: Any, now: datetime, *, acquired: datetime, transitions: int,
              holder: str | None = None, seconds: int | None = None) -> Any:
        """A LeaseSpec with the leader election fields set; any other field of ``old`` (newer
        API fields such as ``strategy``) is kept, as client-go's LeaseLock keeps them."""
        from kubernetes import client

        fields = {name: getattr(old, name) for name in client.V1LeaseSpec.openapi_types} \
            if old is not None else {}
        fields.update(
            holder_identity=self.identity if holder is None else holder,
            lease_duration_seconds=seconds or math.ceil(self.lease_duration),
            acquire_time=micro_time(acquired), renew_time=micro_time(now),
            lease_transitions=transitions)
        return client.V1LeaseSpec(**fields)

    def _observe(self, lease: Any, at: float, *, written: bool = False) -> None:
        """Remember ``lease``; note ``at`` as the time its record was seen to change (for our
        own writes, ``at`` is when the request was sent: the safe side for a leader)."""
        spec = lease.spec
        record = (spec.holder_identity or "", spec.lease_duration_seconds, spec.acquire_time,
                  spec.renew_time, spec.lease_transitions) if spec else ("",)
        self._lease = lease
        if written or record != self._record:
            self._record = record
            self._observed_at = at
        if written:
            self._renewed_at = at

    def _valid(self, now: float) -> bool:
        """The holder last seen may still be leading: its recorded lease duration has not
        passed since we saw the record change."""
        seconds = self._lease.spec.lease_duration_seconds if self._lease.spec else None
        return self._observed_at + (seconds or self.lease_duration) > now

    def _timeout(self) -> float:
        """A leader's requests must answer before its renew deadline; a candidate's within
        one renew deadline."""
        if not self._leading:
            return self.renew_deadline
        left = self._renewed_at + self.renew_deadline - time.monotonic()
        return max(MIN_REQUEST_SECONDS, min(self.renew_deadline, left))

    def _failed(self, doing: str, exc: Exception) -> bool:
        log.log(logging.WARNING if self._leading else logging.DEBUG,
                "leader election: %s %s/%s failed: %s", doing, self.namespace, self.lease_name,
                kube.error_message(exc))
        return False


# --- workers that run only while leading -------------------------------------------------------

class Worker(Protocol):
    """What a worker is: a thread-like object that can be started once and stopped."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class WorkerGroup:
    """Workers made afresh by ``factories`` at each ``start()`` (a stopped thread cannot be
    started again), stopped together by ``stop()``. Its ``start``/``stop`` serve as an
    elector's callbacks; on its own, it runs the workers unconditionally.

    ``stop()`` asks each worker to stop and does not wait for it (a watcher ends its watch
    call first); a worker that fails to be made or started is logged and left out.
    """

    def __init__(self, factories: Iterable[Callable[[], Worker]]) -> None:
        self.factories = list(factories)
        self.workers: list[Worker] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.workers:
                return
            for factory in self.factories:
                try:
                    worker = factory()
                    worker.start()
                except Exception:
                    log.exception("could not start the worker made by %r", factory)
                    continue
                self.workers.append(worker)

    def stop(self) -> None:
        with self._lock:
            workers, self.workers = self.workers, []
        for worker in reversed(workers):
            try:
                worker.stop()
            except Exception:
                log.exception("could not stop %r", worker)


def run_while_leading(factories: Iterable[Callable[[], Worker]], *,
                      elect: bool | None = None,
                      **options: Any) -> LeaderElector | WorkerGroup:
    """Start the workers of ``factories``: while this replica leads (``elect``; by default
    ``KFDASH_LEADER_ELECTION``, on in kubernetes mode) or else right away. ``options`` go to
    :meth:`LeaderElector.from_settings`. Returns what is running: its ``stop()`` stops the
    workers and, for an elector, then releases the Lease (it blocks while doing so)."""
    from django.conf import settings

    if elect is None:
        elect = getattr(settings, "KFDASH_LEADER_ELECTION",
                        getattr(settings, "KFDASH_PLATFORM", "local") == "kubernetes")
    group = WorkerGroup(factories)
    if not elect:
        group.start()
        return group
    elector = LeaderElector.from_settings(on_started_leading=group.start,
                                          on_stopped_leading=group.stop, **options)
    elector.start()
    return elector
