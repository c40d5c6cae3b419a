"""``curator doctor``: is this machine and install able to run curator's jobs?

Each check returns a :class:`Check` (name, ok, one line of detail). The checks:

| check      | what it does                                                              |
|------------|---------------------------------------------------------------------------|
| ``cpu``    | the CPU model and features (``curator/cpuflags.py``), and whether the     |
|            | flags llama-cpp-python was built with suit this CPU                       |
| ``threads``| the LLM thread count jobs get by default (free cores, ``CURATOR_THREADS``) |
| ``memory`` | memory available to this process (``/proc/meminfo``, cgroup limit)        |
| ``database``| opens the database and compares its schema revision with the newest     |
|            | migration (a missing SQLite file: migrations are applied to a temporary   |
|            | one instead, nothing is created)                                          |
| ``guide``  | a child process loads the guide model on its backend, encodes a sentence  |
| ``llm``    | a child process runs the embedded LLM on a prompt of >= 600 tokens        |

The models run in child processes (``python -m curator.probe``): a native crash there,
such as the "Illegal instruction" a llama.cpp build with AMX kernels dies of on some VMs,
ends the child only and is reported with the signal and the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from curator import cpuflags

CHECKS = ("cpu", "threads", "memory", "database", "guide", "llm")
LLM_PROMPT_TOKENS = 600
CHILD_TIMEOUT_S = 300.0
MIN_AVAILABLE_MB = 1024  # the embedded LLM ~0.7 GB, the guide model with torch ~0.5 GB

REBUILD = (
    "rebuild llama-cpp-python portably with `make install` (leave LLAMA_NATIVE unset: "
    "curator/cpuflags.py then picks AVX2/AVX-512 from /proc/cpuinfo and never AMX); if the "
    "cpu line already shows a portable build, drop instructions by hand, e.g. "
    '`make install LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON '
    '-DGGML_F16C=ON -DGGML_AVX512=OFF"`'
)
LLM_FIXES = {
    signal.SIGILL: "illegal instruction: llama-cpp-python was compiled for CPU instructions "
    "this machine cannot run (AMX kernels on a VM, a native build, or a build made on "
    "another CPU). Fix: " + REBUILD,
    signal.SIGSEGV: "a crash in native code. Fix: " + REBUILD,
    signal.SIGBUS: "a crash in native code. Fix: " + REBUILD,
    signal.SIGKILL: "killed from outside, most often by the out-of-memory killer: free "
    "memory (other jobs, a smaller --threads) and run `curator doctor` again",
}
GUIDE_FIXES = {
    signal.SIGILL: "illegal instruction in torch or onnxruntime: they were built for other "
    "CPU instructions. Fix: reinstall them for this machine (`make clean install`)",
    signal.SIGKILL: LLM_FIXES[signal.SIGKILL],
}


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` or not, and one line saying what was found."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.name:<8}  {self.detail}"


@dataclass(frozen=True)
class ChildOutcome:
    """What a probe child left: its JSON result, or why there is none."""

    result: dict | None
    returncode: int | None
    stderr: str
    timed_out: bool = False


def run_child(command: Sequence[str], timeout: float = CHILD_TIMEOUT_S) -> ChildOutcome:
    """Run ``command`` and read the JSON object on the last line of its stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if expired.stderr else ""
        return ChildOutcome(None, None, stderr, timed_out=True)
    result = None
    if done.returncode == 0:
        lines = done.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            result = None
    return ChildOutcome(result, done.returncode, done.stderr)


def describe_failure(outcome: ChildOutcome, what: str, fixes: dict, timeout: float) -> str:
    """One line on why a probe child gave no result, with the fix where one is known."""
    if outcome.timed_out:
        return (
            f"{what} gave no answer in {timeout:.0f} s: is the CPU busy with other jobs? "
            "(see `threads`; CURATOR_THREADS=1 degrades gracefully)"
        )
    code = outcome.returncode
    if code is not None and code < 0:
        try:
            sig = signal.Signals(-code)
            name = sig.name
        except ValueError:
            sig, name = None, f"signal {-code}"
        fix = fixes.get(sig, "a crash in native code")
        return f"{what} died with {name}: {fix}"
    last = next(
        (line.strip() for line in reversed(outcome.stderr.splitlines()) if line.strip()),
        "no error message",
    )
    if code == 0:
        return f"{what} printed no result ({last})"
    return f"{what} failed (exit code {code}): {last}"


# ---------------------------------------------------------------- checks


def check_cpu(cpuinfo: Path = cpuflags.CPUINFO, build_args_file: Path | None = None) -> Check:
    """The CPU's model and features, and whether llama-cpp-python's build flags suit it.

    ``build_args_file`` is the CMAKE_ARGS the Makefile last built with
    (``.venv/.llama-cmake-args``); a build that turned on instructions this CPU does not
    list fails.
    """
    flags = cpuflags.cpu_flags(cpuinfo)
    listed = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags] or [
        "no AVX2"
    ]
    found = f"{cpuflags.cpu_model(cpuinfo)} [{' '.join(listed)}]"
    if build_args_file is None:
        build_args_file = Path(sys.prefix) / ".llama-cmake-args"
    try:
        built = build_args_file.read_text().strip()
    except OSError:
        return Check(
            "cpu",
            True,
            f"{found}; llama-cpp-python build flags unknown (not built by `make install`)",
        )
    if "GGML_NATIVE=ON" in built:
        return Check(
            "cpu",
            True,
            f"{found}; native build (LLAMA_NATIVE=1): the llm check shows whether it runs",
        )
    unsupported = cpuflags.unsupported_options(built, flags)
    if unsupported:
        return Check(
            "cpu",
            False,
            f"{found}; llama-cpp-python was built with {', '.join(unsupported)}, which this "
            f"CPU does not list: {REBUILD}",
        )
    on = [name.removeprefix("GGML_") for name, v in cpuflags.parse_cmake_args(built).items() if v]
    amx = "; AMX listed, left out of the build" if "amx_tile" in flags else ""
    return Check("cpu", True, f"{found}; portable build: {' '.join(on) or 'no SIMD'}{amx}")


def check_threads() -> Check:
    """The LLM thread count a job gets by default, and the cores it was chosen from."""
    from curator.llm.local import default_threads, load_average, usable_cores

    cores, load = usable_cores(), load_average()
    configured = os.environ.get("CURATOR_THREADS")
    try:
        threads = default_threads()
    except ValueError as error:
        return Check("threads", False, str(error))
    source = f"CURATOR_THREADS={configured}" if configured else "the free cores"
    detail = f"LLM threads {threads} ({source}; {cores} usable cores, load average {load:.2f})"
    if threads > cores:
        detail += "; more threads than cores: llama.cpp threads spin and slow down"
    return Check("threads", True, detail)


def available_memory_mb(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """MB of memory this process may still use: MemAvailable, capped by a cgroup v2 limit."""
    available = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text().strip())
            room = (int(limit) - used) // (1024 * 1024)
            available = room if available is None else min(available, room)
    except (OSError, ValueError):
        pass
    return available


def check_memory(need_mb: int = MIN_AVAILABLE_MB, **paths) -> Check:
    """Enough memory for a job that loads the embedded LLM and the guide model."""
    available = available_memory_mb(**paths)
    if available is None:
        return Check("memory", True, "available memory unknown (no /proc/meminfo)")
    detail = f"{available:,} MB available (a job needs about {need_mb:,} MB)"
    if available < need_mb:
        return Check("memory", False, detail + ": close other programs or jobs")
    return Check("memory", True, detail)


def check_database(url: str) -> Check:
    """Open the database at ``url`` without changing it; compare its schema with head."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from db.database import _check_known_revision, head_revision, open_database
    from db.session import sqlite_url

    head = head_revision()
    parsed = make_url(url)
    path = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        with tempfile.TemporaryDirectory() as folder:
            fresh = open_database(sqlite_url(Path(folder) / "doctor.db"))
            revision = fresh.current_revision()
            fresh.dispose()
        return Check(
            "database",
            revision == head,
            f"no database yet at {path}; the migrations build a fresh one up to {revision}",
        )
    try:
        database = open_database(url, upgrade=False)
    except Exception as error:  # any driver error: report it, do not crash the doctor
        return Check("database", False, f"cannot open {parsed!r}: {error}")
    try:
        current = database.current_revision()
        projects = None
        if current is not None:
            with database.engine.connect() as connection:
                projects = connection.execute(text("SELECT count(*) FROM projects")).scalar()
    except Exception as error:
        return Check("database", False, f"cannot read {parsed!r}: {error}")
    finally:
        database.dispose()
    where = repr(parsed)
    if current == head:
        return Check("database", True, f"{where}: schema at head ({head}), {projects} projects")
    if current is None:
        return Check("database", True, f"{where}: empty; the next command creates the schema")
    try:
        _check_known_revision(current)
    except RuntimeError as error:
        return Check("database", False, f"{where}: {error}")
    return Check(
        "database",
        True,
        f"{where}: schema at {current}, head is {head}: the next command (or `curator init`) "
        "upgrades it",
    )


def probe_command(probe: str, *args: str) -> list[str]:
    """The command line of a ``curator.probe`` child in this Python."""
    return [sys.executable, "-m", "curator.probe", probe, *args]


def check_guide(
    data_dir: Path,
    model: str = "all-MiniLM-L6-v2",
    backend: str = "auto",
    *,
    command: Sequence[str] | None = None,
    timeout: float = CHILD_TIMEOUT_S,
) -> Check:
    """In a child process: load the guide model on ``backend``, encode one sentence."""
    command = command or probe_command(
        "guide", "--model", model, "--backend", backend, "--work-dir", str(data_dir / "models")
    )
    outcome = run_child(command, timeout)
    if outcome.result is None:
        return Check(
            "guide", False, describe_failure(outcome, "the guide model", GUIDE_FIXES, timeout)
        )
    r = outcome.result
    if not r.get("finite") or abs(r.get("norm", 0) - 1.0) > 1e-2:
        return Check("guide", False, f"{model} on {r.get('backend')} encoded a bad vector: {r}")
    return Check(
        "guide",
        True,
        f"{r['model']} on {r['backend']}: dim {r['dim']}, loaded in {r['load_s']:.1f} s, "
        f"one sentence in {r['encode_s']:.2f} s, torch threads {r['torch_threads']}",
    )


def simd_features(system_info: str) -> str:
    """The SIMD features llama.cpp reports as on (``AVX2 = 1 | ...`` -> ``AVX2 ...``)."""
    on = []
    for part in system_info.replace("\n", "|").split("|"):
        name, _, value = part.partition("=")
        name = name.split(":")[-1].strip()
        if value.strip() == "1" and name.startswith(("AVX", "AMX", "FMA", "F16C", "SSE3")):
            on.append(name)
    return " ".join(dict.fromkeys(on)) or "none reported"


def check_llm(
    data_dir: Path,
    model: str = "local/gemma3-270m",
    *,
    tokens: int = LLM_PROMPT_TOKENS,
    threads: int | None = None,
    command: Sequence[str] | None = None,
    timeout: float = CHILD_TIMEOUT_S,
) -> Check:
    """In a child process: the embedded LLM continues and scores a >= ``tokens`` prompt.

    ``command`` replaces the child's command line (a test passes one that kills itself
    with SIGILL to see the report).
    """
    if command is None:
        extra = ["--threads", str(threads)] if threads else []
        command = probe_command(
            "llm",
            "--model",
            model,
            "--models-dir",
            str(data_dir / "models"),
            "--tokens",
            str(tokens),
            *extra,
        )
    outcome = run_child(command, timeout)
    what = f"the embedded LLM ({model}) on a {tokens}-token prompt"
    if outcome.result is None:
        return Check("llm", False, describe_failure(outcome, what, LLM_FIXES, timeout))
    r = outcome.result
    if r.get("prompt_tokens", 0) < tokens:
        return Check("llm", False, f"{what}: the prompt had only {r.get('prompt_tokens')} tokens")
    return Check(
        "llm",
        True,
        f"{r['model']}: {r['prompt_tokens']}-token prompt + {r['completion_tokens']} tokens in "
        f"{r['complete_s']:.1f} s, likelihood in {r['likelihood_s']:.1f} s, threads "
        f"{r['threads']}; llama.cpp CPU features: {simd_features(r.get('system_info', ''))}",
    )


def run_checks(
    database_url: str,
    data_dir: Path,
    *,
    skip: Iterable[str] = (),
    llm_command: Sequence[str] | None = None,
    guide_command: Sequence[str] | None = None,
) -> Iterator[Check]:
    """Run every check not in ``skip``, in the order of ``CHECKS``, yielding each outcome."""
    skip = set(skip)
    unknown = skip - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check(s) {sorted(unknown)}; the checks are {', '.join(CHECKS)}")
    data_dir = Path(data_dir)
    runners = {
        "cpu": check_cpu,
        "threads": check_threads,
        "memory": check_memory,
        "database": lambda: check_database(database_url),
        "guide": lambda: check_guide(data_dir, command=guide_command),
        "llm": lambda: check_llm(data_dir, command=llm_command),
    }
    for name in CHECKS:
        if name not in skip:
            yield runners[name]()
