"""Child-process probes for ``curator doctor``: run one model once, print one JSON line.

``curator doctor`` starts ``python -m curator.probe llm|guide ...`` as a child process,
so a native crash (an "Illegal instruction" in llama.cpp, an out-of-memory kill) ends the
child, not the doctor, and comes back as the child's exit signal.

- ``llm``: loads the embedded LLM and continues a prompt of at least ``--tokens`` tokens
  (real text: the Python language reference that ships with CPython), then scores a short
  continuation of it by query likelihood. Long prompts matter: llama.cpp evaluates them in
  large batches through other kernels than short ones (the AMX fault appeared only there).
- ``guide``: loads the guide model on its backend and encodes one sentence.

Output (stdout, one line): a JSON object with what was measured. Any Python error exits
with code 1 and its traceback on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SENTENCE = "Curated training data makes a better retriever."


def long_text(min_words: int) -> str:
    """At least ``min_words`` words of English prose (CPython's bundled documentation)."""
    from pydoc_data.topics import topics

    words: list[str] = []
    for name in sorted(topics):
        words.extend(topics[name].split())
        if len(words) >= min_words:
            break
    return " ".join(words[: max(min_words, 1)])


def probe_llm(model: str, models_dir: Path, tokens: int, threads: int | None) -> dict:
    """Run ``model`` (a ``local/...`` name) on a prompt of at least ``tokens`` tokens."""
    from curator.llm.local import configure_local, default_threads, get_local_model

    n = threads or default_threads()
    configure_local(models_dir=models_dir, n_threads=n, n_threads_batch=n)
    local = get_local_model(model.removeprefix("local/"))
    started = time.perf_counter()
    llama = local.llama
    loaded = time.perf_counter()
    words = tokens
    prompt = long_text(words)
    while len(local.tokenize(prompt)) < tokens:  # about 1.3 tokens per word; be sure
        words = int(words * 1.5) + 1
        prompt = long_text(words)
    completion = local.complete(prompt + "\n\nIn short:", max_tokens=8, temperature=0.0, seed=0)
    generated = time.perf_counter()
    logprob, scored = local.log_likelihood(prompt + "\n\nQuery:", " what is a keyword argument")
    scored_at = time.perf_counter()
    import llama_cpp

    return {
        "model": model,
        "threads": n,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "load_s": round(loaded - started, 3),
        "complete_s": round(generated - loaded, 3),
        "likelihood_s": round(scored_at - generated, 3),
        "logprob": round(logprob, 3),
        "scored_tokens": scored,
        "n_ctx": llama.n_ctx(),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
    }


def probe_guide(model: str, backend: str, work_dir: Path) -> dict:
    """Load the guide model on ``backend`` and encode one sentence."""
    import numpy as np

    from curator.retrieval.guide import GuideModel, GuideSettings

    started = time.perf_counter()
    guide = GuideModel(GuideSettings(model=model, backend=backend), work_dir=work_dir)
    loaded = time.perf_counter()
    vector = guide.encode([SENTENCE])
    encoded = time.perf_counter()
    import torch

    return {
        "model": model,
        "backend": guide.backend,
        "dim": int(vector.shape[1]),
        "norm": round(float(np.linalg.norm(vector[0])), 4),
        "finite": bool(np.isfinite(vector).all()),
        "load_s": round(loaded - started, 3),
        "encode_s": round(encoded - loaded, 3),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curator.probe")
    commands = parser.add_subparsers(dest="probe", required=True)
    llm = commands.add_parser("llm")
    llm.add_argument("--model", default="local/gemma3-270m")
    llm.add_argument("--models-dir", type=Path, default=Path("data/models"))
    llm.add_argument("--tokens", type=int, default=600)
    llm.add_argument("--threads", type=int)
    guide = commands.add_parser("guide")
    guide.add_argument("--model", default="all-MiniLM-L6-v2")
    guide.add_argument("--backend", default="auto")
    guide.add_argument("--work-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args(argv)
    if args.probe == "llm":
        result = probe_llm(args.model, args.models_dir, args.tokens, args.threads)
    else:
        result = probe_guide(args.model, args.backend, args.work_dir)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download a model from a probe
    sys.exit(main())
