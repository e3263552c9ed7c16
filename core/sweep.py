"""Run many independent experiment jobs: in-process by default, or fanned out to worker processes,
a Dask cluster or a Ray cluster (both optional extras, imported only when asked for).

    from core.sweep import run_jobs
    results = run_jobs(job_fn, [spec1, spec2, ...], backend="local", workers=1)

`job_fn` must be a module-level function (it is pickled for the other backends) taking one JSON-able spec
and returning a JSON-able result; results come back in the order of the specs. Jobs share work only through
the on-disk model cache (`core.cache.ModelStore`), whose writes are atomic, so any backend may run them in
any order. Dask: `RESIDUE_DASK_ADDRESS` names a running scheduler, else a local cluster of `workers`
processes is started. Ray: `RESIDUE_RAY_ADDRESS` likewise, else a local Ray instance with `workers` CPUs.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from .errors import ResidueError

BACKENDS = ("local", "dask", "ray")


def _single_thread() -> None:
    """Workers share the machine's cores: one torch thread each avoids oversubscription."""
    import torch

    torch.set_num_threads(1)


def _call_single_thread(fn: Callable[[Any], Any], spec: Any) -> Any:
    _single_thread()
    return fn(spec)


def run_jobs(fn: Callable[[Any], Any], specs: Sequence[Any], backend: str = "local", workers: int = 1,
             on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """fn(spec) for every spec, on the chosen backend; `on_done(i, result)` is called as each job finishes."""
    if backend not in BACKENDS:
        raise ResidueError(f"Unknown backend '{backend}'. Known: {', '.join(BACKENDS)}.")
    workers = max(1, int(workers))
    done = on_done or (lambda i, r: None)
    out: list[Any] = [None] * len(specs)
    if backend == "local" and workers == 1:
        for i, s in enumerate(specs):
            out[i] = fn(s)
            done(i, out[i])
        return out
    if backend == "local":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_single_thread) as ex:
            futures = {ex.submit(fn, s): i for i, s in enumerate(specs)}
            for f in as_completed(futures):
                i = futures[f]
                out[i] = f.result()
                done(i, out[i])
        return out
    if backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster, as_completed as dask_completed
        except ImportError:
            raise ResidueError("backend 'dask' needs the optional extra: pip install -e '.[distributed]'.") from None
        address = os.environ.get("RESIDUE_DASK_ADDRESS")
        cluster = None if address else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        with Client(address or cluster) as client:
            futures = client.map(_call_single_thread, [fn] * len(specs), specs, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            for f in dask_completed(futures):
                i = index[f.key]
                out[i] = f.result()
                done(i, out[i])
        if cluster is not None:
            cluster.close()
        return out
    try:
        import ray
    except ImportError:
        raise ResidueError("backend 'ray' needs Ray installed: pip install 'ray>=2.9'.") from None
    address = os.environ.get("RESIDUE_RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, **({} if address else {"num_cpus": workers}), log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(_call_single_thread)
        refs = [remote.remote(fn, s) for s in specs]
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = refs.index(ready[0])
            out[i] = ray.get(ready[0])
            done(i, out[i])
    finally:
        if started:
            ray.shutdown()
    return out
