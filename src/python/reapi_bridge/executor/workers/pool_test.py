"""The pool's bookkeeping with real (idle) processes: keys, users and instances never mix,
caps evict the least recently used idle worker, nothing waits."""

import pytest

from reapi_bridge.common.workers import WorkerSpec
from reapi_bridge.executor.workers.pool import WorkerPool, WorkerSettings
from reapi_bridge.executor.workers.process import WorkerProcess


def spec(key: str, multiplex: bool = False) -> WorkerSpec:
    return WorkerSpec(key, True, "proto", multiplex, ("cat",), "f", (), "")


@pytest.fixture
def pool():
    p = WorkerPool(WorkerSettings(max_total=2, max_per_key=2))
    yield p
    p.close()


def start(pool, tmp_path, pool_key, multiplex=False):
    lease = pool.acquire(pool_key, multiplex)
    assert lease is not None and lease.worker is None
    home = tmp_path / f"w{len(list(tmp_path.iterdir()))}"
    home.mkdir()
    worker = WorkerProcess(spec(pool_key[2], multiplex), pool_key, home, home, ["/bin/cat"], home, {})
    pool.started(lease, worker)
    return worker


def test_workers_never_cross_instances_users_or_keys(pool, tmp_path):
    worker = start(pool, tmp_path, ("i1", "nobody", "k"))
    pool.release(worker, served=True)
    for other in [("i2", "nobody", "k"), ("i1", "root", "k"), ("i1", "nobody", "k2")]:
        lease = pool.acquire(other, False)
        assert lease is not None and lease.worker is None  # a new worker, never the one above
        pool.started(lease, None)
    lease = pool.acquire(("i1", "nobody", "k"), False)
    assert lease.worker is worker


def test_a_busy_singleplex_worker_is_not_shared(pool, tmp_path):
    busy = start(pool, tmp_path, ("", "", "k"))
    second = start(pool, tmp_path, ("", "", "k"))
    assert second is not busy
    assert pool.acquire(("", "", "k"), False) is None  # at max_per_key, both busy: one-shot


def test_the_total_cap_evicts_the_least_recently_used_idle_worker(pool, tmp_path):
    a = start(pool, tmp_path, ("", "", "a"))
    b = start(pool, tmp_path, ("", "", "b"))
    pool.release(a, served=True)
    pool.release(b, served=True)
    c = start(pool, tmp_path, ("", "", "c"))  # evicts a, used longest ago
    assert not a.alive and b.alive and c.alive
    assert {row.key for row in pool.rows()} == {"b", "c"}


def test_nothing_to_evict_means_one_shot(pool, tmp_path):
    start(pool, tmp_path, ("", "", "a"))
    start(pool, tmp_path, ("", "", "b"))
    assert pool.acquire(("", "", "c"), False) is None


def test_a_multiplex_worker_takes_concurrent_requests(pool, tmp_path):
    worker = start(pool, tmp_path, ("", "", "m"), multiplex=True)
    lease = pool.acquire(("", "", "m"), True)
    assert lease.worker is worker and worker.in_flight == 2
    assert pool.warm_keys() == ["m"]
