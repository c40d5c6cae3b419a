"""Export a sentence-transformers model (transformer + mean pooling + normalise) to ONNX
and run it with onnxruntime, optionally with dynamic int8 quantisation.

Only models whose pipeline is Transformer -> mean Pooling (-> Normalize) are exported;
others raise ValueError (use the torch or bf16 backend for them).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _check_mean_pooling(model) -> None:
    names = [type(module).__name__ for module in model]
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None) or (
        "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else None
    )
    if len(names) < 2 or names[1] != "Pooling" or mode not in ("mean", "mean_tokens"):
        raise ValueError(
            f"the ONNX backend supports Transformer -> mean Pooling models; this one is "
            f"{' -> '.join(names)} (use --backend torch or bf16)"
        )


def export_onnx(model, path: Path) -> None:
    """Write ``model`` (a SentenceTransformer) as an ONNX graph to ``path``."""
    import torch

    _check_mean_pooling(model)
    transformer = model[0].auto_model.eval()
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    inputs = tokenize(["an example sentence to trace the graph"])
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inputs]

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            kwargs = dict(zip(names, tensors, strict=True))
            hidden = self.transformer(**kwargs).last_hidden_state
            mask = kwargs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(),
            tuple(inputs[n] for n in names),
            str(partial),
            input_names=names,
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={
                **{n: {0: "batch", 1: "sequence"} for n in names},
                "embedding": {0: "batch"},
            },
        )
    partial.replace(path)


def quantize_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(".partial")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8)
    partial.replace(target)


class OnnxEncoder:
    """Tokenise with the model's tokenizer, run the exported graph with onnxruntime."""

    def __init__(self, session, tokenizer, input_names: list[str], max_length: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.input_names = input_names
        self.max_length = max_length

    @classmethod
    def from_sentence_transformer(
        cls, model, folder: Path, *, quantize: bool = False, max_length: int = 256
    ) -> OnnxEncoder:
        """Export once into ``folder`` (reused afterwards) and open an inference session."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError(
                "the onnx backends need onnxruntime and onnx: pip install 'embedding-curator[onnx]'"
            ) from exc
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            log.info("exporting the guide model to %s", fp32)
            export_onnx(model, fp32)
        path = fp32
        if quantize:
            path = folder / "model.int8.onnx"
            if not path.exists():
                quantize_int8(fp32, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("CURATOR_THREADS") or os.cpu_count() or 1)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return cls(session, model.tokenizer, names, max_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feeds = {name: batch[name].astype(np.int64) for name in self.input_names}
        (vectors,) = self.session.run(["embedding"], feeds)
        return np.asarray(vectors, dtype=np.float32)
