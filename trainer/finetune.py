"""Fine-tune a bi-encoder with sentence-transformers' ``SentenceTransformerTrainer``.

Input: a base model (path or hub name), training rows (``{"anchor", "positive",
"negative_1", ...}``, plus ``"label"`` for MarginMSE), an output folder and
:class:`TrainSettings`. Output: a saved model (with the model card sentence-transformers
writes) under ``<output>/model`` and a :class:`FineTuneResult` with the loss curve.

Losses:

| ``loss``      | what                                                               |
|---------------|--------------------------------------------------------------------|
| ``mnrl``      | MultipleNegativesRankingLoss: in-batch + the hard negatives (default) |
| ``cached_mnrl`` | CachedMNRL (GradCache): large batches in ``mini_batch_size`` pieces |
| ``gist``      | GISTEmbedLoss: in-batch negatives the guide scores above the positive are masked |
| ``margin_mse``| MarginMSELoss on teacher score margins (GPL-style, ``label`` column) |

``matryoshka=True`` wraps the loss in MatryoshkaLoss. Batches use the ``no_duplicates``
sampler (a text twice in a batch would be its own in-batch negative).

Checkpoints go to ``<output>/checkpoints`` every ``save_steps`` steps; calling
:func:`fine_tune` again on the same folder resumes from the newest *complete* one (its
``trainer_state.json``, which the trainer writes last, reads as JSON and its weights are
there); a checkpoint cut short by a kill is removed. The loss curve comes from the
trainer's log history, which a checkpoint carries, so a resumed run's curve holds every
step from the first.

Defaults are chosen for 2 CPU cores (``bench/train.py`` measures them on SciFact):
two epochs, batch 32, max_seq 256, lr 5e-5, one hard negative, bf16 where the CPU has
bf16 instructions (SciFact's 919 pairs: under 8 minutes). On a GPU raise ``batch_size``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOSSES = ("mnrl", "cached_mnrl", "gist", "margin_mse")
StepCallback = Callable[[int, int, float | None], None]


@dataclass(frozen=True)
class TrainSettings:
    loss: str = "mnrl"
    epochs: float = 2.0
    batch_size: int = 32
    mini_batch_size: int = 8
    learning_rate: float = 5e-5
    warmup: float = 0.1
    max_seq_length: int = 256
    negatives: int = 1
    matryoshka: bool = False
    matryoshka_dims: tuple[int, ...] = (384, 256, 128, 64)
    bf16: str = "auto"  # auto / on / off
    seed: int = 13
    save_steps: int = 20
    max_steps: int = -1
    logging_steps: int = 1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ValueError(f"bf16 must be auto, on or off, got {self.bf16!r}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (in-batch negatives)")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("epochs must be > 0 (or max_steps set)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["matryoshka_dims"] = list(self.matryoshka_dims)
        return values


@dataclass
class FineTuneResult:
    model_path: Path
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_from: str | None = None
    bf16: bool = False


def use_bf16(setting: str) -> bool:
    """Whether to train in bf16: ``auto`` = a CUDA GPU with bf16, or a CPU with bf16
    instructions (there it roughly halves step time; elsewhere it is slower)."""
    if setting != "auto":
        return setting == "on"
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from curator.retrieval.guide import cpu_has_bf16

    return cpu_has_bf16()


def warmup_for(rows: int, batch_size: int, settings: TrainSettings) -> float:
    """The warm-up (a fraction of the steps): none for runs under 10 steps, where even one
    warm-up step would be a large share of the training (a 1-step run would not move)."""
    import math

    steps = (
        settings.max_steps
        if settings.max_steps > 0
        else math.ceil(math.ceil(rows / batch_size) * settings.epochs)
    )
    return settings.warmup if steps >= 10 else 0.0


def load_model(name: str, max_seq_length: int | None = None):
    """A SentenceTransformer from a local folder, the packaged MiniLM, or a hub name."""
    from sentence_transformers import SentenceTransformer

    from curator.retrieval.guide import resolve_model

    path, local = resolve_model(name)
    model = SentenceTransformer(path, local_files_only=local)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _loss(model, settings: TrainSettings, guide_name: str | None):
    from sentence_transformers.sentence_transformer import losses

    if settings.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model)
    elif settings.loss == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, mini_batch_size=settings.mini_batch_size
        )
    elif settings.loss == "gist":
        guide = load_model(guide_name or "all-MiniLM-L6-v2", settings.max_seq_length)
        loss = losses.GISTEmbedLoss(model, guide)
    else:
        loss = losses.MarginMSELoss(model)
    if settings.matryoshka:
        dim = model.get_embedding_dimension()
        dims = sorted({d for d in settings.matryoshka_dims if d <= dim} | {dim}, reverse=True)
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)
    return loss


def check_rows(rows: list[dict[str, Any]], settings: TrainSettings) -> None:
    """Refuse rows the chosen loss cannot train on, with the reason."""
    if not rows:
        raise ValueError("no training rows: judge some queries (or change the policy) first")
    if len(rows) < 2:
        raise ValueError("at least 2 training rows are needed (in-batch negatives)")
    columns = list(rows[0])
    if columns[:2] != ["anchor", "positive"]:
        raise ValueError(f"rows must start with anchor, positive; got {columns}")
    if settings.loss == "margin_mse" and "label" not in columns:
        raise ValueError("margin_mse needs a 'label' column of teacher scores")
    for number, row in enumerate(rows, start=1):
        if list(row) != columns:
            raise ValueError(f"row {number} has columns {list(row)}, expected {columns}")


def fine_tune(
    base_model: str,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    settings: TrainSettings = TrainSettings(),
    *,
    guide_model: str | None = None,
    on_step: StepCallback | None = None,
) -> FineTuneResult:
    """Train ``base_model`` on ``rows`` and save it to ``<output_dir>/model``.

    ``on_step(step, total_steps, latest_loss)`` is called after every optimiser step.
    A previous interrupted run in the same ``output_dir`` is resumed from its last
    checkpoint."""
    check_rows(rows, settings)
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from datasets import Dataset
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainer
    from transformers.trainer_callback import PrinterCallback

    output_dir = Path(output_dir)
    checkpoints = output_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    bf16 = use_bf16(settings.bf16)
    model = load_model(base_model, settings.max_seq_length)
    loss = _loss(model, settings, guide_model)
    dataset = Dataset.from_list(rows)
    args = _training_arguments(checkpoints, len(rows), settings, bf16)
    curve: list[dict[str, float]] = []
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        callbacks=[_progress_callback(curve, on_step)],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through on_step instead
    last = last_complete_checkpoint(checkpoints)
    if last:
        log.info("resuming from %s", last)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    seconds = time.perf_counter() - started
    model_path = output_dir / "model"
    if trainer.is_world_process_zero():  # several processes (trainer.distributed): one writes
        model.save(str(model_path))
    history = [  # with the steps before a resume, from the checkpoint's trainer state
        {"step": entry["step"], "loss": float(entry["loss"])}
        for entry in trainer.state.log_history
        if "loss" in entry and "step" in entry
    ]
    return FineTuneResult(
        model_path=model_path,
        loss_curve=history or curve,
        steps=trainer.state.global_step,
        seconds=seconds,
        resumed_from=str(last) if last else None,
        bf16=bf16,
    )


def _training_arguments(checkpoints: Path, n_rows: int, settings: TrainSettings, bf16: bool):
    """The trainer's arguments for ``n_rows`` rows: checkpoints every ``save_steps`` in
    ``checkpoints`` (the last one kept), the no-duplicates batch sampler, CPU unless CUDA."""
    import torch
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import SentenceTransformerTrainingArguments

    batch_size = min(settings.batch_size, n_rows)
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=warmup_for(n_rows, batch_size, settings),
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=1,
        logging_steps=settings.logging_steps,
        report_to="none",
        seed=settings.seed,
        # keep the last, smaller batch: with few rows the no-duplicates sampler may fill
        # no complete batch at all
        dataloader_drop_last=False,
        disable_tqdm=True,
    )


def _progress_callback(curve: list[dict[str, float]], on_step: StepCallback | None):
    """A trainer callback that appends loss points to ``curve`` and calls ``on_step`` once
    per step (with the step's loss when it is logged, which the trainer does after
    ``on_step_end``)."""
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                curve.append({"step": state.global_step, "loss": float(logs["loss"])})
                if on_step:
                    on_step(state.global_step, state.max_steps, curve[-1]["loss"])

        def on_step_end(self, args, state, control, **kwargs):
            if on_step and state.global_step % max(1, args.logging_steps):
                on_step(state.global_step, state.max_steps, None)

    return Report()


WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def checkpoint_complete(folder: Path) -> bool:
    """Whether the trainer finished writing checkpoint ``folder``: its
    ``trainer_state.json`` (written after the model, optimizer and scheduler) reads as JSON
    and a weights file is there."""
    import json

    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return any(any(folder.rglob(name)) for name in WEIGHTS)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``folder``; incomplete ones (a run killed
    while it wrote them) are removed, so the trainer never resumes from or rotates them."""
    import shutil

    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    last = None
    for checkpoint in found:
        if checkpoint_complete(checkpoint):
            last = last or checkpoint
        else:
            log.warning("removing the incomplete checkpoint %s", checkpoint)
            shutil.rmtree(checkpoint, ignore_errors=True)
    return last
