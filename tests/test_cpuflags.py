"""curator/cpuflags.py: portable llama.cpp flags from hand-made /proc/cpuinfo files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write

from curator import cpuflags

AVX2 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2"
AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl avx512vbmi avx512_vnni avx512_bf16"
AMX = "amx_tile amx_int8 amx_bf16 avx512_fp16"


def cpuinfo(tmp_path: Path, model: str, flags: str, cpus: int = 2) -> Path:
    """A /proc/cpuinfo look-alike with ``cpus`` processors sharing ``flags``."""
    blocks = [
        f"processor\t: {i}\nvendor_id\t: x\nmodel name\t: {model}\nflags\t\t: {flags}\n"
        for i in range(cpus)
    ]
    return write(tmp_path / "cpuinfo", "\n".join(blocks))


def cmake_options(args: str) -> dict[str, str]:
    """``-DNAME=VALUE`` pairs of a CMAKE_ARGS string as a dict."""
    options = {}
    for part in args.split():
        assert part.startswith("-D"), part
        name, _, value = part[2:].partition("=")
        options[name] = value
    return options


def assert_amx_off(options: dict[str, str]) -> None:
    amx = {k: v for k, v in options.items() if "AMX" in k}
    assert amx == {"GGML_AMX_TILE": "OFF", "GGML_AMX_INT8": "OFF", "GGML_AMX_BF16": "OFF"}


def test_amd_with_avx512_gets_avx512_and_no_amx(tmp_path):
    path = cpuinfo(tmp_path, "AMD EPYC 9R14 96-Core Processor", f"{AVX2} {AVX512}")
    flags = cpuflags.cpu_flags(path)
    assert {"avx2", "avx512f", "avx512_bf16"} <= flags
    options = cmake_options(cpuflags.cmake_args(flags))
    assert options["GGML_NATIVE"] == "OFF"
    for name in ("GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C"):
        assert options[name] == "ON"
    for name in ("GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"):
        assert options[name] == "ON"
    assert_amx_off(options)


def test_intel_listing_amx_never_gets_amx(tmp_path):
    path = cpuinfo(tmp_path, "Intel(R) Xeon(R) Platinum 8488C", f"{AVX2} {AVX512} {AMX}")
    flags = cpuflags.cpu_flags(path)
    assert "amx_tile" in flags and "amx_int8" in flags
    options = cmake_options(cpuflags.cmake_args(flags))
    assert_amx_off(options)
    assert options["GGML_NATIVE"] == "OFF"
    assert options["GGML_AVX512"] == "ON"
    assert "-march=native" not in cpuflags.cmake_args(flags)


def test_avx2_only_cpu_gets_no_avx512(tmp_path):
    path = cpuinfo(tmp_path, "Intel(R) Core(TM) i7-8700", AVX2)
    options = cmake_options(cpuflags.cmake_args(cpuflags.cpu_flags(path)))
    assert options["GGML_AVX2"] == "ON" and options["GGML_FMA"] == "ON"
    for name in ("GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"):
        assert options[name] == "OFF"
    assert_amx_off(options)


def test_avx512_extensions_need_avx512f(tmp_path):
    # a (virtual) CPU that lists an extension but not the foundation gets none of them
    path = cpuinfo(tmp_path, "odd VM", f"{AVX2} avx512_vnni avx512_bf16")
    options = cpuflags.ggml_options(cpuflags.cpu_flags(path))
    assert not any(on for name, on in options.items() if name.startswith("GGML_AVX512"))


def test_only_listed_avx512_extensions_are_on(tmp_path):
    path = cpuinfo(tmp_path, "Intel Skylake-SP", f"{AVX2} avx512f avx512bw avx512vl")
    options = cpuflags.ggml_options(cpuflags.cpu_flags(path))
    assert options["GGML_AVX512"] is True
    assert options["GGML_AVX512_VBMI"] is False
    assert options["GGML_AVX512_VNNI"] is False
    assert options["GGML_AVX512_BF16"] is False


def test_unreadable_or_flagless_file_gives_the_most_conservative_build(tmp_path):
    missing = tmp_path / "no-such-cpuinfo"
    assert cpuflags.cpu_flags(missing) == set()
    folder = tmp_path / "a-folder"  # reading a directory raises IsADirectoryError (an OSError)
    folder.mkdir()
    assert cpuflags.cpu_flags(folder) == set()
    no_flags = write(tmp_path / "arm", "processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpuflags.cpu_flags(no_flags) == set()
    options = cmake_options(cpuflags.cmake_args(set()))
    assert options["GGML_NATIVE"] == "OFF"
    assert all(v == "OFF" for k, v in options.items() if k.startswith("GGML_")), options


@pytest.mark.parametrize("flags", [AVX2, f"{AVX2} {AVX512}", f"{AVX2} {AVX512} {AMX}"])
def test_amx_is_off_whatever_the_cpu_lists(tmp_path, flags):
    options = cpuflags.ggml_options(cpuflags.cpu_flags(cpuinfo(tmp_path, "cpu", flags)))
    assert not any(on for name, on in options.items() if "AMX" in name)


def test_script_prints_this_machines_cmake_args():
    # the Makefile runs the file with the system Python before anything is installed
    script = Path(cpuflags.__file__)
    out = subprocess.run(
        [sys.executable, "-S", str(script)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == cpuflags.cmake_args(cpuflags.cpu_flags())
    assert "-DGGML_NATIVE=OFF" in out and "-DGGML_AMX_TILE=OFF" in out


def test_cpu_model_names_the_first_cpu(tmp_path):
    assert cpuflags.cpu_model(cpuinfo(tmp_path, "AMD EPYC", AVX2)) == "AMD EPYC"
    assert cpuflags.cpu_model(tmp_path / "missing") == "unknown"


def test_a_build_for_another_cpu_is_flagged(tmp_path):
    # built on the AVX-512 machine, run on an AVX2-only one: those options would fault
    built = cpuflags.cmake_args(cpuflags.cpu_flags(cpuinfo(tmp_path, "a", f"{AVX2} {AVX512}")))
    avx2_only = cpuflags.cpu_flags(cpuinfo(tmp_path, "b", AVX2))
    assert cpuflags.unsupported_options(built, avx2_only) == [
        "GGML_AVX512",
        "GGML_AVX512_VBMI",
        "GGML_AVX512_VNNI",
        "GGML_AVX512_BF16",
    ]
    # the other way round (fewer instructions than the CPU has) is safe
    rich = cpuflags.cpu_flags(cpuinfo(tmp_path, "c", f"{AVX2} {AVX512}"))
    assert cpuflags.unsupported_options(cpuflags.cmake_args(avx2_only), rich) == []
    assert cpuflags.unsupported_options("-DGGML_AMX_TILE=ON", avx2_only) == ["GGML_AMX_TILE"]
