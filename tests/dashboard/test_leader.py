"""Leader election on a Lease (dashboard/leader.py), against the strict fake API server.

Timings are short (a lease of a second or two, retries every 0.1 s). Every "eventually" is a
poll with a generous deadline; every "not before" is judged from what the cluster recorded
(the last renewTime a leader wrote), never from how long the test happened to wait.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

import pytest

from dashboard import kube
from dashboard.leader import (
    DEFAULT_LEASE,
    LeaderElector,
    WorkerGroup,
    micro_time,
    pod_namespace,
    run_while_leading,
)
from tests.fakekube.server import configure_kubernetes_for

NAMESPACE = "default"
LEASE = DEFAULT_LEASE
COORDINATION = "coordination.k8s.io"
# Generous renew deadlines: a leader must not lose its Lease just because the machine is busy.
FAST = {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.1}
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def eventually(condition, timeout: float = 10.0, what: str = "the condition"):
    """Poll ``condition`` until it is truthy (returned) or ``timeout`` seconds pass (fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.01)


def wall(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


class Terms:
    """Callbacks that record each start and stop of leadership (with the wall time)."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.stopped: list[float] = []

    def on_started(self) -> None:
        self.started.append(time.time())

    def on_stopped(self) -> None:
        self.stopped.append(time.time())


class FakeWorker:
    """A worker as the watchers are: started once, stopped once, never restarted."""

    def __init__(self, name: str, running: set[str]) -> None:
        self.name = name
        self.running = running  # shared by every worker of a test
        self.started = self.stopped = False
        self.others_at_start: set[str] = set()

    def start(self) -> None:
        assert not self.started and not self.stopped, "a worker cannot be restarted"
        self.others_at_start = set(self.running)
        self.running.add(self.name)
        self.started = True

    def stop(self) -> None:
        self.running.discard(self.name)
        self.stopped = True
        self.stopped_at = time.time()


class Factory:
    """Makes FakeWorkers named ``<prefix>-<n>`` and keeps them all."""

    def __init__(self, prefix: str, running: set[str]) -> None:
        self.prefix = prefix
        self.running = running
        self.made: list[FakeWorker] = []

    def __call__(self) -> FakeWorker:
        self.made.append(FakeWorker(f"{self.prefix}-{len(self.made) + 1}", self.running))
        return self.made[-1]


@pytest.fixture
def cluster(settings, fake_kube):
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    yield fake_kube
    kube.reset()


@pytest.fixture
def start(cluster):
    """``start(identity, terms=None, **timings)``: a started elector on the test's Lease;
    all are stopped (and release) at the end."""
    running: list = []

    def make(identity: str, terms: Terms | None = None, **timings) -> LeaderElector:
        terms = terms or Terms()
        elector = LeaderElector(NAMESPACE, LEASE, identity=identity, **{**FAST, **timings},
                                on_started_leading=terms.on_started,
                                on_stopped_leading=terms.on_stopped)
        elector.terms = terms
        running.append(elector)
        elector.start()
        return elector

    yield make
    for elector in running:
        elector.stop(timeout=10)
        assert not elector.is_alive()


def lease(cluster) -> dict:
    return cluster.get_object("leases", LEASE, NAMESPACE, group=COORDINATION)


def lease_requests(cluster, method: str) -> int:
    return sum(1 for r in cluster.requests
               if r.method == method and r.path.endswith(f"/leases/{LEASE}"))


# --- one elector ------------------------------------------------------------------------------

def test_it_creates_an_absent_lease_and_renews_it(cluster, start):
    elector = start("alpha")
    eventually(lambda: elector.is_leader, what="leading")
    first = lease(cluster)
    spec = first["spec"]
    assert spec["holderIdentity"] == "alpha"
    assert spec["leaseDurationSeconds"] == 3
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["acquireTime"]) and MICRO_TIME.match(spec["renewTime"])
    assert elector.terms.started and not elector.terms.stopped
    assert elector.holder == "alpha"

    renewed = eventually(lambda: (now := lease(cluster))["spec"]["renewTime"]
                         != spec["renewTime"] and now, what="a renewal")
    assert wall(renewed["spec"]["renewTime"]) > wall(spec["renewTime"])
    assert renewed["spec"]["acquireTime"] == spec["acquireTime"]  # the same term goes on
    assert renewed["spec"]["leaseTransitions"] == 0
    assert int(renewed["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert len(elector.terms.started) == 1 and elector.is_alive()


def test_it_releases_the_lease_when_stopped(cluster, start):
    elector = start("alpha")
    eventually(lambda: elector.is_leader, what="leading")
    elector.stop()
    assert not elector.is_alive() and not elector.is_leader
    assert len(elector.terms.stopped) == 1
    spec = lease(cluster)["spec"]
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0


def test_it_refuses_timings_client_go_would_refuse():
    for timings in ({"lease_duration": 1, "renew_deadline": 1, "retry_period": 0.1},
                    {"lease_duration": 2, "renew_deadline": 1, "retry_period": 1},
                    {"lease_duration": 2, "renew_deadline": 1, "retry_period": 0}):
        with pytest.raises(ValueError, match="renew_deadline"):
            LeaderElector(NAMESPACE, LEASE, **timings)


# --- two electors -----------------------------------------------------------------------------

def test_only_one_leads_and_a_release_hands_over_within_a_retry_period(cluster):
    """With a 5 s lease, taking over within 3 s can only come from the release."""
    running: set[str] = set()
    factories = {name: Factory(name, running) for name in ("alpha", "beta")}
    timings = {"lease_duration": 5.0, "renew_deadline": 1.0, "retry_period": 0.1}
    alpha = run_while_leading([factories["alpha"]], elect=True, namespace=NAMESPACE,
                              name=LEASE, identity="alpha", **timings)
    beta = None
    try:
        eventually(lambda: alpha.is_leader and running == {"alpha-1"}, what="alpha leading")
        beta = run_while_leading([factories["beta"]], elect=True, namespace=NAMESPACE,
                                 name=LEASE, identity="beta", **timings)
        gets = lease_requests(cluster, "GET")
        eventually(lambda: lease_requests(cluster, "GET") >= gets + 3, what="beta's attempts")
        assert alpha.is_leader and not beta.is_leader
        assert beta.holder == "alpha" and running == {"alpha-1"}
        assert not factories["beta"].made

        stopped = time.monotonic()
        alpha.stop()
        eventually(lambda: beta.is_leader, timeout=3, what="beta taking over")
        assert time.monotonic() - stopped < 3
        eventually(lambda: running == {"beta-1"}, what="beta's worker")
        # alpha stopped its workers before it released the Lease.
        (worker,) = factories["beta"].made
        assert worker.others_at_start == set()
        assert factories["alpha"].made[0].stopped
        spec = lease(cluster)["spec"]
        assert spec["holderIdentity"] == "beta" and spec["leaseTransitions"] == 1
    finally:
        alpha.stop(timeout=10)
        if beta is not None:
            beta.stop(timeout=10)


def test_a_leader_that_dies_is_replaced_only_after_the_lease_duration(cluster, start):
    last_seen: list[dict] = []
    alpha = start("alpha", lease_duration=2.0, renew_deadline=1.0)
    eventually(lambda: alpha.is_leader, what="alpha leading")
    beta = start("beta", lease_duration=2.0, renew_deadline=1.0)
    gets = lease_requests(cluster, "GET")
    eventually(lambda: lease_requests(cluster, "GET") >= gets + 3, what="beta's attempts")
    assert not beta.is_leader

    # Renewals stop with no release, as when a pod is killed; what the Lease says once they
    # have stopped is the last renewal beta can see.
    alpha.on_stopped_leading = lambda: last_seen.append(lease(cluster))
    alpha.stop(release=False)
    (final,) = last_seen
    assert final["spec"]["holderIdentity"] == "alpha"

    eventually(lambda: beta.is_leader, timeout=10, what="beta taking over")
    took_over = beta.terms.started[0]
    assert took_over >= wall(final["spec"]["renewTime"]) + 2.0 - 0.01
    spec = lease(cluster)["spec"]
    assert spec["holderIdentity"] == "beta" and spec["leaseTransitions"] == 1
    assert spec["leaseDurationSeconds"] == 2


def test_two_candidates_for_an_absent_lease_make_one_leader(cluster, start):
    electors = [start(name) for name in ("alpha", "beta", "gamma")]
    leader = eventually(lambda: [e for e in electors if e.is_leader], what="a leader")
    gets = lease_requests(cluster, "GET")
    eventually(lambda: lease_requests(cluster, "GET") >= gets + 6, what="the others' attempts")
    assert [e for e in electors if e.is_leader] == leader
    assert len(leader) == 1
    assert lease(cluster)["spec"]["holderIdentity"] == leader[0].identity
    assert all(not e.terms.started for e in electors if e not in leader)


# --- conflicts and failures -------------------------------------------------------------------

def test_a_conflict_on_update_means_not_leading(cluster, start):
    cluster.put_object({"apiVersion": f"{COORDINATION}/v1", "kind": "Lease",
                        "metadata": {"name": LEASE, "namespace": NAMESPACE},
                        "spec": {"holderIdentity": "", "leaseDurationSeconds": 1}})
    cluster.fail_next("PUT", rf"/leases/{LEASE}$", status=409, reason="Conflict", times=3)
    puts_when_leading: list[int] = []
    terms = Terms()
    terms.on_started = lambda: puts_when_leading.append(lease_requests(cluster, "PUT"))
    elector = start("alpha", terms)
    eventually(lambda: elector.is_leader, what="leading after the conflicts")
    # Three updates were refused with 409 and none of them made it lead.
    assert len(puts_when_leading) == 1 and puts_when_leading[0] >= 4
    assert elector.is_alive()
    spec = lease(cluster)["spec"]
    assert spec["holderIdentity"] == "alpha" and spec["leaseTransitions"] == 1


def test_it_stops_leading_at_once_when_another_holder_wrote_the_lease(cluster, start):
    elector = start("alpha", lease_duration=6.0, renew_deadline=4.0)
    eventually(lambda: elector.is_leader, what="leading")
    stolen = lease(cluster)
    stolen["spec"].update(holderIdentity="intruder", leaseDurationSeconds=30,
                          renewTime=micro_time(datetime.now().astimezone()))
    cluster.put_object(stolen)  # a new resourceVersion: alpha's next renewal gets 409

    # Long before its renew deadline (4 s): seeing another holder ends leadership at once.
    eventually(lambda: elector.terms.stopped, timeout=3, what="alpha stepping down")
    assert not elector.is_leader and elector.holder == "intruder"
    gets = lease_requests(cluster, "GET")
    eventually(lambda: lease_requests(cluster, "GET") >= gets + 3, what="alpha's attempts")
    assert not elector.is_leader and len(elector.terms.started) == 1
    assert lease(cluster)["spec"]["holderIdentity"] == "intruder"
    assert elector.is_alive()


def test_a_few_failed_renewals_within_the_deadline_keep_it_leading(cluster, start):
    elector = start("alpha")
    eventually(lambda: elector.is_leader, what="leading")
    cluster.fail_next("PUT", rf"/leases/{LEASE}$", status=500, times=2)
    puts = lease_requests(cluster, "PUT")
    eventually(lambda: lease_requests(cluster, "PUT") >= puts + 4, what="renewals after the 500s")
    assert elector.is_leader and not elector.terms.stopped
    assert lease(cluster)["spec"]["holderIdentity"] == "alpha"


def test_workers_stop_when_the_api_server_is_away_and_start_afresh_when_it_is_back(cluster):
    running: set[str] = set()
    factory = Factory("worker", running)
    timings = {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.1}
    elector = run_while_leading([factory], elect=True, namespace=NAMESPACE, name=LEASE,
                                identity="alpha", **timings)
    try:
        eventually(lambda: running == {"worker-1"}, what="the first worker")
        cluster.stop()  # connections refused from now on
        last = lease(cluster)["spec"]["renewTime"]  # the store outlives the HTTP server
        eventually(lambda: running == set(), timeout=10, what="stepping down")
        assert not elector.is_leader and factory.made[0].stopped
        # Not before the renew deadline had passed since the last renewal.
        assert factory.made[0].stopped_at >= wall(last) + 1.0 - 0.01
        assert elector.is_alive()

        cluster.start()  # a new port: point the client at it as a new kubeconfig would
        configure_kubernetes_for(cluster, cluster.kubeconfig_path)
        kube.reset()
        eventually(lambda: elector.is_leader, timeout=10, what="leading again")
        eventually(lambda: running == {"worker-2"}, what="a fresh worker")
        assert len(factory.made) == 2 and not factory.made[1].stopped
        assert lease(cluster)["spec"]["holderIdentity"] == "alpha"
    finally:
        elector.stop(timeout=10)
    assert running == set()


# --- the worker group -------------------------------------------------------------------------

def test_the_factories_are_called_once_per_term_and_the_workers_stopped_with_it(cluster):
    running: set[str] = set()
    first, second = Factory("first", running), Factory("second", running)
    elector = run_while_leading([first, second], elect=True, namespace=NAMESPACE, name=LEASE,
                                identity="alpha", **FAST)
    try:
        eventually(lambda: running == {"first-1", "second-1"}, what="the workers")
        renewal = lease(cluster)["spec"]["renewTime"]
        eventually(lambda: lease(cluster)["spec"]["renewTime"] != renewal, what="a renewal")
        assert len(first.made) == len(second.made) == 1
    finally:
        elector.stop(timeout=10)
    assert running == set()
    assert first.made[0].stopped and second.made[0].stopped
    assert lease(cluster)["spec"]["holderIdentity"] == ""


def test_without_election_the_workers_run_at_once_and_no_lease_is_made(cluster):
    running: set[str] = set()
    factory = Factory("worker", running)
    group = run_while_leading([factory], elect=False)
    assert isinstance(group, WorkerGroup) and running == {"worker-1"}
    group.stop()
    assert running == set() and factory.made[0].stopped
    assert lease(cluster) is None
    group.start()  # a new term: a new worker
    assert running == {"worker-2"}
    group.stop()


def test_a_worker_that_cannot_start_leaves_the_others_running():
    running: set[str] = set()
    good = Factory("good", running)

    def broken():
        raise RuntimeError("no")

    group = WorkerGroup([broken, good])
    group.start()
    group.start()  # already running: nothing new
    assert running == {"good-1"} and len(good.made) == 1
    group.stop()
    assert running == set()


# --- settings --------------------------------------------------------------------------------

def test_it_reads_the_lease_from_the_settings(settings):
    settings.KFDASH_LEADER_NAMESPACE = "kfdash"
    settings.KFDASH_LEADER_LEASE = "my-lease"
    elector = LeaderElector.from_settings(identity="alpha")
    assert (elector.namespace, elector.lease_name, elector.identity) == (
        "kfdash", "my-lease", "alpha")
    assert (elector.lease_duration, elector.renew_deadline, elector.retry_period) == (15, 10, 2)
    assert LeaderElector.from_settings(namespace="other").namespace == "other"


def test_it_works_before_the_settings_exist(settings, tmp_path):
    for name in ("KFDASH_LEADER_NAMESPACE", "KFDASH_LEADER_LEASE", "KFDASH_LEADER_ELECTION"):
        if hasattr(settings, name):
            delattr(settings, name)
    elector = LeaderElector.from_settings()
    assert elector.lease_name == "kfdash-leader"
    assert elector.namespace == (pod_namespace() or "kubeflow")
    assert elector.identity != LeaderElector.from_settings().identity
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("kfdash\n")
    assert pod_namespace(namespace_file) == "kfdash"
    assert pod_namespace(tmp_path / "missing") is None
    settings.KFDASH_PLATFORM = "local"
    group = run_while_leading([])
    assert isinstance(group, WorkerGroup)
    group.stop()


def test_it_elects_by_default_in_kubernetes_mode(settings, cluster):
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KFDASH_LEADER_NAMESPACE = NAMESPACE
    if hasattr(settings, "KFDASH_LEADER_ELECTION"):
        delattr(settings, "KFDASH_LEADER_ELECTION")
    elector = run_while_leading([], identity="alpha", **FAST)
    try:
        assert isinstance(elector, LeaderElector)
        eventually(lambda: elector.is_leader, what="leading")
        assert lease(cluster)["spec"]["holderIdentity"] == "alpha"
    finally:
        elector.stop(timeout=10)


def test_the_election_setting_wins(settings):
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KFDASH_LEADER_ELECTION = False
    group = run_while_leading([])
    assert isinstance(group, WorkerGroup)
    group.stop()


def test_callbacks_that_raise_do_not_stop_the_election(cluster, start):
    terms = Terms()
    calls: list[str] = []

    def broken():
        calls.append("started")
        raise RuntimeError("no")

    terms.on_started = broken
    elector = start("alpha", terms)
    eventually(lambda: calls, what="the callback")
    renewal = lease(cluster)["spec"]["renewTime"]
    eventually(lambda: lease(cluster)["spec"]["renewTime"] != renewal, what="a renewal")
    assert elector.is_leader and elector.is_alive()


def test_stop_from_another_thread_while_waiting_ends_promptly(cluster, start):
    cluster.put_object({"apiVersion": f"{COORDINATION}/v1", "kind": "Lease",
                        "metadata": {"name": LEASE, "namespace": NAMESPACE},
                        "spec": {"holderIdentity": "someone", "leaseDurationSeconds": 30}})
    elector = start("alpha")
    eventually(lambda: elector.holder == "someone", what="reading the lease")
    stopper = threading.Thread(target=elector.stop)
    stopper.start()
    stopper.join(5)
    assert not elector.is_alive() and not elector.terms.started and not elector.terms.stopped
    assert lease(cluster)["spec"]["holderIdentity"] == "someone"  # not ours to release
