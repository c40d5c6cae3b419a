"""One heavy job at a time per data folder.

Generating, mining, reranking and training each load a model and keep every core busy;
two at once on a small machine slow each other down many times over (llama.cpp's threads
spin on shared cores). ``job_lock`` takes an exclusive lock on ``<data dir>/jobs.lock``
(:class:`curator.locks.FileLock`) for the length of a job: a second job waits for the
first (default) or is refused. The lock is the kernel's, so a crashed or killed job frees
it at once, and it is seen by every process that uses the same data folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from curator.locks import FileLock, LockBusy

HEAVY_JOBS = ("generate", "mine", "rerank", "train")
JOBS_LOCK = "jobs.lock"


class JobBusy(LockBusy):
    """Another heavy job holds the data folder's job lock (and we were not to wait)."""


@contextmanager
def job_lock(
    data_dir: Path,
    job: str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[FileLock]:
    """Hold ``<data_dir>/jobs.lock`` while the ``with`` block runs ``job``.

    With ``wait`` (default) a busy lock is waited for, after ``on_wait(holder)`` is
    called once; without, :class:`JobBusy` is raised naming the running job.
    """
    lock = FileLock(Path(data_dir) / JOBS_LOCK, purpose=job)
    if not lock.acquire(wait=wait, on_wait=on_wait):
        holder = lock.holder()
        raise JobBusy(
            f"another job is running in {data_dir} ({holder}); {job} not started: run it "
            "again later, or without --no-wait to wait for it",
            holder,
        )
    try:
        yield lock
    finally:
        lock.release()
