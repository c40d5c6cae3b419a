"""Exclusive file locks that say who holds them (``fcntl.flock``, local file systems).

A :class:`FileLock` is held by one open file: two locks on the same path conflict whether
they are in two processes or in two threads of one process, and the kernel releases the
lock when its holder exits, however it exits (kill -9 included). So a lock that can be
taken means its last holder is gone. The holder writes one line into the file (pid, host,
start time, what it does) for the message a refused or waiting caller prints.

Lock files are never deleted (deleting one while another process opens it would let two
holders in). The descriptor is not inherited by programs started with ``subprocess``.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path


class LockBusy(RuntimeError):
    """The lock is held by someone else; ``holder`` is their line from the lock file."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class FileLock:
    """An exclusive lock on ``path`` (created with its folder if missing)."""

    def __init__(self, path: str | Path, purpose: str = "") -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def holder(self) -> str:
        """The line the current (or last) holder wrote, or "unknown"."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(
        self,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        poll: float = 0.2,
    ) -> bool:
        """Take the lock; True once held.

        ``wait=False`` returns False at once when someone else holds it. Otherwise
        ``on_wait(holder)`` is called once and the call waits, up to ``timeout`` seconds
        (None: as long as it takes), returning False if it ran out.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not self._try(fd):
                if not wait:
                    os.close(fd)
                    return False
                if on_wait is not None:
                    on_wait(self.holder())
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._try(fd):
                    if deadline is not None and time.monotonic() >= deadline:
                        os.close(fd)
                        return False
                    time.sleep(poll)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_holder()
        return True

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _write_holder(self) -> None:
        since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        line = f"pid {os.getpid()} on {socket.gethostname()} since {since}"
        if self.purpose:
            line = f"{self.purpose}: {line}"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (line + "\n").encode("utf-8"), 0)

    def release(self) -> None:
        """Let go of the lock (the file stays); a lock not held is left alone."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
