"""``curator doctor``: each check on real inputs, crashes of its child processes, the CLI."""

from __future__ import annotations

import signal
import sys

import pytest
from conftest import write
from sqlalchemy import text

from curator.cli import main
from curator.services import doctor
from db import open_database
from db.database import head_revision
from db.session import sqlite_url


def killed_by(sig: signal.Signals) -> list[str]:
    """A child that kills itself with ``sig``, as a faulting llama.cpp build would die."""
    return [sys.executable, "-c", f"import os, signal; os.kill(os.getpid(), signal.{sig.name})"]


def test_llm_child_killed_by_sigill_is_reported_with_the_fix(tmp_path):
    check = doctor.check_llm(tmp_path, command=killed_by(signal.SIGILL))
    assert not check.ok
    assert "died with SIGILL" in check.detail
    assert "illegal instruction" in check.detail
    assert "make install" in check.detail and "LLAMA_NATIVE" in check.detail
    assert check.line().startswith("FAIL  llm ")


def test_llm_child_killed_by_sigkill_points_at_memory(tmp_path):
    check = doctor.check_llm(tmp_path, command=killed_by(signal.SIGKILL))
    assert not check.ok and "SIGKILL" in check.detail and "out-of-memory" in check.detail


def test_child_python_error_is_reported_with_its_last_line(tmp_path):
    command = [sys.executable, "-c", "raise RuntimeError('no GGUF file at /nowhere.gguf')"]
    check = doctor.check_llm(tmp_path, command=command)
    assert not check.ok
    assert "exit code 1" in check.detail
    assert "RuntimeError: no GGUF file at /nowhere.gguf" in check.detail


def test_child_that_hangs_is_reported_after_the_timeout(tmp_path):
    command = [sys.executable, "-c", "import time; time.sleep(30)"]
    check = doctor.check_guide(tmp_path, command=command, timeout=0.5)
    assert not check.ok and "gave no answer in" in check.detail


def test_child_result_is_read_from_its_last_stdout_line(tmp_path):
    result = (
        '{"model": "m", "backend": "torch", "dim": 3, "norm": 1.0, "finite": true, '
        '"load_s": 0.1, "encode_s": 0.01, "torch_threads": 1}'
    )
    command = [sys.executable, "-c", f"print('log noise'); print({result!r})"]
    check = doctor.check_guide(tmp_path, command=command)
    assert check.ok and "m on torch: dim 3" in check.detail
    bad = result.replace('"norm": 1.0', '"norm": 0.2')
    check = doctor.check_guide(tmp_path, command=[sys.executable, "-c", f"print({bad!r})"])
    assert not check.ok and "bad vector" in check.detail


def test_cli_doctor_exits_non_zero_and_names_the_signal(tmp_path, capsys, monkeypatch):
    real = doctor.probe_command

    def crashing_llm(probe, *args):
        return killed_by(signal.SIGILL) if probe == "llm" else real(probe, *args)

    monkeypatch.setattr(doctor, "probe_command", crashing_llm)
    code = main(["--data-dir", str(tmp_path / "data"), "doctor", "--skip", "guide"])
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["cpu", "threads", "memory", "database", "llm"]
    assert lines[-1].startswith("FAIL  llm") and "SIGILL" in lines[-1]
    assert all(line.startswith("ok ") for line in lines[:-1]), out
    assert "1 check(s) failed: llm" in err
    assert not (tmp_path / "data" / "curator.db").exists(), "the doctor must not create a db"


def test_cli_doctor_rejects_an_unknown_check(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path), "doctor", "--skip", "llm,gpu"])
    assert code == 2 and "unknown check(s) ['gpu']" in capsys.readouterr().err


# ---------------------------------------------------------------- database


def test_database_at_head_is_ok(database):
    check = doctor.check_database(database.url)
    assert check.ok and f"schema at head ({head_revision()})" in check.detail
    assert "0 projects" in check.detail


def test_missing_database_is_checked_on_a_temporary_copy(tmp_path):
    path = tmp_path / "none" / "curator.db"
    check = doctor.check_database(sqlite_url(path))
    assert check.ok and "no database yet" in check.detail and head_revision() in check.detail
    assert not path.exists()


def test_database_from_a_newer_version_fails(db_path):
    database = open_database(sqlite_url(db_path))
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    database.dispose()
    check = doctor.check_database(sqlite_url(db_path))
    assert not check.ok and "9999_future" in check.detail and "newer version" in check.detail


def test_database_behind_head_is_upgraded_by_the_next_command(db_path):
    database = open_database(sqlite_url(db_path), upgrade=False)
    database.upgrade("0001")
    database.dispose()
    check = doctor.check_database(sqlite_url(db_path))
    assert check.ok and "upgrades it" in check.detail
    assert open_database(sqlite_url(db_path), upgrade=False).current_revision().startswith("0001")


def test_unreadable_database_fails(tmp_path):
    bad = write(tmp_path / "curator.db", b"this is not an SQLite file at all" * 100)
    check = doctor.check_database(sqlite_url(bad))
    assert not check.ok and "cannot" in check.detail


# ---------------------------------------------------------------- cpu, threads, memory

AVX2_ONLY = "processor\t: 0\nmodel name\t: Old Xeon\nflags\t\t: sse avx avx2 fma f16c\n"
AMX_XEON = (
    "processor\t: 0\nmodel name\t: Intel Xeon\n"
    "flags\t\t: avx avx2 fma f16c avx512f amx_tile amx_int8 amx_bf16\n"
)


def test_build_with_instructions_the_cpu_lacks_fails(tmp_path):
    cpuinfo = write(tmp_path / "cpuinfo", AVX2_ONLY)
    built = write(tmp_path / "args", "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON\n")
    check = doctor.check_cpu(cpuinfo, built)
    assert not check.ok and "GGML_AVX512" in check.detail and "make install" in check.detail
    assert "Old Xeon [avx2]" in check.detail


def test_portable_build_on_an_amx_cpu_is_ok_and_says_amx_is_left_out(tmp_path):
    from curator.cpuflags import cmake_args, cpu_flags

    cpuinfo = write(tmp_path / "cpuinfo", AMX_XEON)
    built = write(tmp_path / "args", cmake_args(cpu_flags(cpuinfo)))
    check = doctor.check_cpu(cpuinfo, built)
    assert check.ok and "AMX listed, left out of the build" in check.detail
    assert "AMX_TILE" not in check.detail.split("portable build:")[1].split(";")[0]


def test_native_and_unknown_builds_are_reported(tmp_path):
    cpuinfo = write(tmp_path / "cpuinfo", AVX2_ONLY)
    native = write(tmp_path / "args", "-DLLAVA_BUILD=OFF -DGGML_NATIVE=ON")
    assert "native build" in doctor.check_cpu(cpuinfo, native).detail
    assert "unknown" in doctor.check_cpu(cpuinfo, tmp_path / "missing").detail


def test_threads_check(monkeypatch):
    monkeypatch.setenv("CURATOR_THREADS", "lots")
    check = doctor.check_threads()
    assert not check.ok and "CURATOR_THREADS must be a whole number" in check.detail
    monkeypatch.setenv("CURATOR_THREADS", "1")
    check = doctor.check_threads()
    assert check.ok and "LLM threads 1 (CURATOR_THREADS=1" in check.detail
    monkeypatch.delenv("CURATOR_THREADS")
    check = doctor.check_threads()
    assert check.ok and "the free cores" in check.detail and "load average" in check.detail


def test_memory_check_reads_meminfo_and_the_cgroup_limit(tmp_path):
    meminfo = write(tmp_path / "meminfo", "MemTotal: 8000000 kB\nMemAvailable: 4096000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    check = doctor.check_memory(meminfo=meminfo, cgroup=cgroup)
    assert check.ok and "4,000 MB available" in check.detail
    write(cgroup / "memory.max", str(1536 * 1024 * 1024))
    write(cgroup / "memory.current", str(1024 * 1024 * 1024))  # 512 MB of room left
    check = doctor.check_memory(meminfo=meminfo, cgroup=cgroup)
    assert not check.ok and "512 MB available" in check.detail
    missing = doctor.check_memory(meminfo=tmp_path / "none", cgroup=tmp_path / "none")
    assert missing.ok and "unknown" in missing.detail


def test_simd_features_from_llama_system_info():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 | OPENMP = 1 |"
    assert doctor.simd_features(info) == "SSE3 AVX AVX2 AMX_INT8"


# ---------------------------------------------------------------- for real


@pytest.mark.slow
def test_embedded_llm_runs_a_600_token_prompt_in_a_child(tmp_path):
    """CI's guard against llama.cpp builds that fault on long prompts (AMX on a VM)."""
    check = doctor.check_llm(tmp_path, tokens=600, threads=2)
    assert check.ok, check.detail
    tokens = int(check.detail.split("-token prompt")[0].split()[-1])
    assert tokens >= 600


@pytest.mark.slow
def test_guide_model_loads_and_encodes_in_a_child(tmp_path):
    check = doctor.check_guide(tmp_path)
    assert check.ok, check.detail
    assert "all-MiniLM-L6-v2" in check.detail and "dim 384" in check.detail


@pytest.mark.slow
def test_a_loaded_model_takes_the_thread_count_of_the_next_job(local_llm):
    import llama_cpp

    from curator.llm.local import _config, configure_local, get_local_model

    before = (_config.n_threads, _config.n_threads_batch)
    try:
        configure_local(n_threads=1)
        model = get_local_model("gemma3-270m")
        model.complete("The capital of France is", max_tokens=2)
        assert llama_cpp.llama_n_threads(model.llama._ctx.ctx) == 1
        configure_local(n_threads=2)
        assert get_local_model("gemma3-270m") is model
        assert llama_cpp.llama_n_threads(model.llama._ctx.ctx) == 2
        assert llama_cpp.llama_n_threads_batch(model.llama._ctx.ctx) == 2
        assert model.complete("The capital of France is", max_tokens=2).completion_tokens >= 1
    finally:
        configure_local(n_threads=before[0], n_threads_batch=before[1])
