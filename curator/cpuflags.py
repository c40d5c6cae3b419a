"""Portable llama.cpp build flags chosen from the CPU's features.

llama-cpp-python compiles llama.cpp from source, and its default build uses
``-march=native``. On a VM whose /proc/cpuinfo lists AMX (``amx_tile``) but
does not let processes use the AMX tile state, a native build compiles AMX
kernels in and dies with "Illegal instruction" on the first long prompt. This
module turns the listed CPU flags into explicit GGML options instead:

- ``GGML_NATIVE=OFF`` always (no ``-march=native``);
- the AVX2 set (AVX, AVX2, FMA, F16C) where the CPU lists ``avx2``;
- AVX-512 (and its VBMI, VNNI and BF16 extensions) only where listed;
- AMX never.

It imports nothing from the project and only the standard library, so the
Makefile can run it with the system Python before anything is installed::

    python3 curator/cpuflags.py          # prints the CMAKE_ARGS string

``curator doctor`` imports it to report the flags in use.
"""

from __future__ import annotations

import sys
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

#: GGML option -> the /proc/cpuinfo flag that must be listed for it.
AVX2_SET = {
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
}
AVX512_SET = {
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
}
#: Always added: no LLaVA (saves a minute of build) and no native tuning.
BASE_ARGS = ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """Return the feature flags of the first CPU listed in ``cpuinfo``.

    An unreadable file (not Linux) gives an empty set, which yields the most
    conservative build.
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The ``model name`` of the first CPU in ``cpuinfo`` ("unknown" if none is listed)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip() or "unknown"
    return "unknown"


def ggml_options(flags: set[str]) -> dict[str, bool]:
    """Map CPU flags to GGML build options (each ON or OFF, AMX always OFF)."""
    options = {name: flag in flags for name, flag in AVX2_SET.items()}
    has_avx512 = "avx512f" in flags
    for name, flag in AVX512_SET.items():
        options[name] = has_avx512 and flag in flags
    options["GGML_AMX_TILE"] = False
    options["GGML_AMX_INT8"] = False
    options["GGML_AMX_BF16"] = False
    return options


def cmake_args(flags: set[str]) -> str:
    """Return the CMAKE_ARGS string for a portable build on a CPU with ``flags``."""
    parts = list(BASE_ARGS)
    for name, on in ggml_options(flags).items():
        parts.append(f"-D{name}={'ON' if on else 'OFF'}")
    return " ".join(parts)


def parse_cmake_args(args: str) -> dict[str, bool]:
    """The ``-DGGML_...=ON/OFF`` options of a CMAKE_ARGS string, as name -> on."""
    options = {}
    for part in args.split():
        name, _, value = part.removeprefix("-D").partition("=")
        if name.startswith("GGML_"):
            options[name] = value.upper() in ("ON", "1", "TRUE", "YES")
    return options


def unsupported_options(args: str, flags: set[str]) -> list[str]:
    """GGML options turned ON in ``args`` whose instructions ``flags`` does not list.

    A build with such an option can die with "Illegal instruction" on this CPU (a build
    copied from another machine, or AMX forced on). ``GGML_NATIVE`` is not judged here:
    what a native build uses is known only to the compiler that made it.
    """
    requires = {**AVX2_SET, **AVX512_SET}
    requires.update(
        {"GGML_AMX_TILE": "amx_tile", "GGML_AMX_INT8": "amx_int8", "GGML_AMX_BF16": "amx_bf16"}
    )
    return [
        name
        for name, on in parse_cmake_args(args).items()
        if on and name in requires and requires[name] not in flags
    ]


def main() -> None:
    """Print the CMAKE_ARGS for this machine's CPU."""
    sys.stdout.write(cmake_args(cpu_flags()) + "\n")


if __name__ == "__main__":
    main()
