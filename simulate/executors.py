"""Executors: run a sweep's chunks in this process (the default) or on a Dask cluster.

A *chunk* is one teacher batch (``protocol.teacher_batches``) with all the students of its teachers,
so replicas stay batched on whichever worker runs it. Workers compute and *return* results (rows,
curves, newly trained teacher weights); the client writes every unit through the store
(``simulate.sweep.run_sweep(client=...)``), so the table is the same whichever executor ran it: the
seeds are the same and every chunk computes the same batches.

Fault tolerance:
- a worker that dies mid-chunk (SIGKILL, OOM, a lost node) loses nothing: the scheduler reschedules
  its tasks on the other workers (``distributed.scheduler.allowed-failures`` times); a chunk that
  *raises* is retried ``retries`` times. Results are consumed once per chunk, so no unit is written
  twice, and writing a unit is idempotent anyway (atomic replace of the same file).
- a client that dies mid-sweep (its cluster with it, for ``--workers``) resumes on rerun like the
  in-process runner: finished units are skipped, saved teachers reused.

Threads: every worker sets torch and BLAS threads to ``threads`` (default 1) for the whole chunk.
On a small shared CPU, one thread per process is the fast choice (``simulate.device``); Dask's nanny
also sets ``OMP_NUM_THREADS=1`` in the workers' environment.

Usage (the command line does this for ``--workers N`` and ``--scheduler ADDR``)::

    with dask_client(workers=2) as client:
        run_sweep(spec, out, client=client)
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from softleak.simulate.spec import SweepSpec

log = logging.getLogger(__name__)

# How often a chunk that raised an exception is resubmitted (lost workers are handled by the
# scheduler's own rescheduling, up to distributed.scheduler.allowed-failures).
DEFAULT_RETRIES = 3


def compute_chunk(
    spec: SweepSpec,
    keys: list[tuple[int, int, int, int]],
    states: dict,
    threads: int | None = None,
) -> list:
    """Run one chunk on a worker: its teachers (reusing ``states``) and all their students.

    Returns a list of ``simulate.sweep.UnitResult`` (rows, curves, new teacher weights on CPU).
    """
    from softleak.simulate.chunks import chunk_units
    from softleak.simulate.device import thread_count

    threads = threads or 1  # the spec's precision applies inside the trainer's steps
    with thread_count(threads):
        return list(chunk_units(spec, keys, states, threads))


def run_chunks(
    client,
    spec: SweepSpec,
    chunks: list[tuple[list, dict]],
    *,
    threads: int | None = None,
    retries: int = DEFAULT_RETRIES,
) -> Iterator[list]:
    """Submit ``chunks`` ((teacher keys, saved states) pairs) to ``client``'s cluster; yield each
    chunk's list of unit results as it completes (in completion order).

    On an error that outlives its retries, the remaining chunks are cancelled and it is raised.
    """
    from distributed import as_completed

    if not chunks:
        return
    tag = uuid.uuid4().hex[:8]
    futures = []
    for i, (keys, states) in enumerate(chunks):
        d, c, n, rep = keys[0]
        futures.append(
            client.submit(
                compute_chunk,
                spec,
                keys,
                states,
                threads,
                key=f"softleak-chunk-d{d}-c{c}-n{n}-s{rep}-{i}-{tag}",
                retries=retries,
                pure=False,
                priority=len(chunks) - i,  # grid order first
            )
        )
    try:
        for future in as_completed(futures):
            results = future.result()
            future.release()
            yield results
    finally:
        client.cancel([f for f in futures if not f.done()])


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, timeout: float = 30):
    """A ``distributed.Client`` on a new local cluster of ``workers`` processes (one task thread
    each) or on the existing cluster at ``scheduler``; both are closed on exit.

    Raises ImportError when ``distributed`` is missing, OSError/TimeoutError when the scheduler
    cannot be reached.
    """
    from distributed import Client, LocalCluster

    if (workers is None) == (scheduler is None):
        raise ValueError("give exactly one of workers and scheduler")
    with _quiet_dask_logs() as quiet:
        if scheduler is not None:
            with Client(scheduler, timeout=timeout) as client, quiet.on_error():
                yield client
            return
        with _workers_ignore_interrupts():  # only while the worker processes start
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # No dashboard; the scheduler's HTTP endpoint on a free port, not 8787 (two
                # clusters on one machine would otherwise warn about the port).
                scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
                silence_logs=logging.ERROR,
            )
        with cluster, Client(cluster) as client, quiet.on_error():
            yield client


@contextlib.contextmanager
def _workers_ignore_interrupts():
    """Start the local cluster's processes with SIGINT ignored (a Python started with SIGINT
    ignored keeps ignoring it), then restore this process's handler: Ctrl-C reaches the whole
    process group, and this process alone answers it by closing the cluster -- the workers would
    otherwise each print a KeyboardInterrupt traceback."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _QuietDask:
    """The ``distributed`` logger's level while a client is open (see ``_quiet_dask_logs``)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    @contextlib.contextmanager
    def on_error(self):
        """Silence the logger entirely when the body raises (Ctrl-C, SIGTERM, an error): the
        cluster's teardown then reports killed workers and cancelled tasks in several lines,
        noise beside the command's own one-line message."""
        try:
            yield
        except BaseException:
            self.logger.setLevel(logging.CRITICAL + 1)  # its children (nanny, ...) inherit it
            raise


@contextlib.contextmanager
def _quiet_dask_logs(level: int = logging.WARNING):
    """Keep Dask's INFO chatter (scheduler/nanny start and stop) out of the command's output;
    warnings, e.g. about a lost worker, still show (on stderr) while the run goes on."""
    logger = logging.getLogger("distributed")
    old = logger.level
    if logger.getEffectiveLevel() < level:
        logger.setLevel(level)
    try:
        yield _QuietDask(logger)
    finally:
        logger.setLevel(old)


def remote_device(client, device: str) -> str:
    """Resolve ``--device`` (auto, cpu, cuda) on a worker of the cluster, not on the client: a
    Slurm login node often has no GPU while the workers do."""
    from softleak.simulate.device import resolve_device

    return client.submit(resolve_device, device, pure=False).result()


def remote_free_bytes(client, device: str) -> int:
    """Free memory of ``device`` on a worker of the cluster (what a chunk will have there), for
    the size check before a distributed sweep starts."""
    from softleak.simulate.memory import free_bytes

    return int(client.submit(free_bytes, device, pure=False).result())
