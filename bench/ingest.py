"""Ingestion throughput and peak memory.

Runs the real ``curator ingest`` command in a child process (so its peak RSS is measured
alone) on:
  1. SciFact's corpus.jsonl (5,183 passages) from ../shared/datasets, ingested twice
     (the second run must add nothing);
  2. a generated JSONL of N passages (default 1,000,000, ~60 words each).

Prints passages per second and the child's peak RSS for each. Goal: 1M passages under
1 GB RSS.

    python bench/ingest.py                 # full run (1M passages, a few minutes)
    python bench/ingest.py --passages 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
RSS_GOAL_MB = 1024


def generate_corpus(path: Path, passages: int, seed: int = 0) -> None:
    """Write ``passages`` unique pseudo-text passages of ~60 words as BEIR JSONL."""
    rng = random.Random(seed)
    vocabulary = [f"term{i}" for i in range(20_000)]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(passages):
            words = rng.choices(vocabulary, k=60)
            row = {"_id": f"doc{i}", "title": f"Document {i}", "text": " ".join(words)}
            handle.write(json.dumps(row) + "\n")


def run_ingest(data_dir: Path, corpus: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last stdout line) of one `curator ingest` child process."""
    command = [
        sys.executable,
        "-m",
        "curator.cli",
        "--data-dir",
        str(data_dir),
        "ingest",
        str(corpus),
    ]
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    output = child.stdout.read().strip().splitlines()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingest failed: {output}")
    return seconds, usage.ru_maxrss / 1024, output[-1] if output else ""


def report(label: str, passages: int, seconds: float, rss_mb: float, line: str) -> None:
    print(
        f"{label:<28} {passages:>9,} passages  {seconds:7.1f} s  "
        f"{passages / seconds:9,.0f} passages/s  peak RSS {rss_mb:6.0f} MB"
    )
    print(f"{'':<28} {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curator-bench-"))
    try:
        if SCIFACT.exists():
            seconds, rss, line = run_ingest(work / "scifact", SCIFACT)
            report("SciFact (first ingest)", 5183, seconds, rss, line)
            seconds, rss, line = run_ingest(work / "scifact", SCIFACT)
            report("SciFact (re-ingest, no-op)", 5183, seconds, rss, line)
        else:
            print(f"SciFact not found at {SCIFACT}; skipped")
        corpus = work / "generated.jsonl"
        start = time.perf_counter()
        generate_corpus(corpus, args.passages)
        size_mb = corpus.stat().st_size / 2**20
        print(
            f"generated {args.passages:,} passages ({size_mb:,.0f} MB) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        seconds, rss, line = run_ingest(work / "generated", corpus)
        report("generated JSONL", args.passages, seconds, rss, line)
        verdict = "OK" if rss < RSS_GOAL_MB else "OVER GOAL"
        print(f"peak RSS {rss:.0f} MB vs goal {RSS_GOAL_MB} MB: {verdict}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
