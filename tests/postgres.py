"""A throwaway PostgreSQL server for the tests and benchmarks (standard library only).

    python3 tests/postgres.py start DIR   # initdb + pg_ctl start; prints `export ...URL=...`
    python3 tests/postgres.py stop DIR    # pg_ctl stop (DIR is kept; remove it yourself)

The server uses Debian's binaries (``/usr/lib/postgresql/<version>/bin``, or ``initdb`` on
the PATH), listens on 127.0.0.1 on a free port and on a Unix socket in DIR, and trusts
local connections (user ``postgres``, no password): it is for tests, never for data.
PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
user (created by the Debian package) and its commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

URL_VARIABLE = "CURATOR_TEST_POSTGRES_URL"


def find_bin(name: str) -> str | None:
    """The newest Debian PostgreSQL binary ``name``, else one on the PATH, else None."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else shutil.which(name)


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(folder: str | Path) -> str:
    """Create a cluster in ``folder`` (if it has none), start it, return its SQLAlchemy URL
    (the ``postgres`` maintenance database)."""
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL binaries not found (initdb, pg_ctl): apt-get install postgresql"
        )
    folder = Path(folder).resolve()
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        for parent in folder.parents:  # the postgres user must reach the folder
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not searchable by other users, so the postgres user "
                    f"cannot reach {folder}: choose a folder elsewhere (e.g. mktemp -d)"
                )
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            _as_owner([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    port = _free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(folder / "server.log")
    subprocess.run(
        _as_owner([pg_ctl, "-D", str(data), "-l", log, "-o", options, "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    (folder / "url").write_text(url + "\n")
    return url


def stop(folder: str | Path) -> None:
    """Stop the server started in ``folder`` (fast shutdown)."""
    data = Path(folder).resolve() / "data"
    pg_ctl = find_bin("pg_ctl")
    if pg_ctl and (data / "postmaster.pid").exists():
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(f"export {URL_VARIABLE}={start(argv[1])}")
    else:
        stop(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
