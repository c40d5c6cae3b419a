"""Fine-tuning in several processes, launched through ``accelerate launch``.

``distributed_fine_tune`` (called by the training service in the caller's process) writes
the training rows and settings to ``<output>/distributed/job.json`` and starts
``accelerate launch --multi_gpu --num_processes N -m trainer.distributed <job>``, which
runs ``main`` in N processes (torch.distributed: NCCL on GPUs, gloo on CPU).
Each process runs the same ``fine_tune``; ``SentenceTransformerTrainer`` shards the batches
across them (data parallel: each process takes ``batch_size`` rows a step, so a step
trains on N x ``batch_size`` rows) and averages the gradients. Only rank 0 writes the
checkpoints (the trainer's rule), the final model, the progress lines and the result;
the caller, not the workers, stores the run's rows in the database.

accelerate's own ``--cpu`` switch runs several CPU processes only through ``mpirun``;
its ``--multi_gpu`` path (torch.distributed.run) works on a machine without a GPU too,
where the trainer sets up gloo, so both use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trainer.finetune import FineTuneResult, StepCallback, TrainSettings, last_complete_checkpoint

JOB_FOLDER = "distributed"
POLL_SECONDS = 0.5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the workers' rendezvous)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(job: Path, processes: int) -> list[str]:
    """The ``accelerate launch`` command line that runs ``main`` in ``processes`` processes."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),  # two runs at once never collide
        "-m",
        "trainer.distributed",
        str(job),
    ]


def distributed_fine_tune(
    base_model: str,
    rows: list[dict[str, Any]],
    output_dir: str | Path,
    settings: TrainSettings,
    *,
    processes: int = 2,
    guide_model: str | None = None,
    on_step: StepCallback | None = None,
) -> FineTuneResult:
    """``fine_tune`` (same inputs, same result) in ``processes`` processes. Raises
    RuntimeError with the end of the workers' log when the launch fails."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    output_dir = Path(output_dir)
    folder = output_dir / JOB_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("rank-*.json"), folder / "progress.jsonl", folder / "result.json"]:
        stale.unlink(missing_ok=True)
    last_complete_checkpoint(output_dir / "checkpoints")  # drop broken ones before N look
    job = folder / "job.json"
    job.write_text(
        json.dumps(
            {
                "base_model": base_model,
                "rows": rows,
                "output_dir": str(output_dir),
                "settings": settings.as_dict(),
                "guide_model": guide_model,
            }
        ),
        encoding="utf-8",
    )
    log_path = folder / "workers.log"
    _run_workers(launch_command(job, processes), log_path, folder / "progress.jsonl", on_step)
    result_path = folder / "result.json"
    if not result_path.exists():
        raise RuntimeError(f"the training workers wrote no result; see {log_path}")
    data = json.loads(result_path.read_text(encoding="utf-8"))
    return FineTuneResult(**{**data, "model_path": Path(data["model_path"])})


def _run_workers(command, log_path: Path, progress: Path, on_step: StepCallback | None) -> None:
    """Run ``command`` (its output into ``log_path``), passing rank 0's progress lines to
    ``on_step`` as they come; stop the workers if the caller is interrupted."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    seen = 0
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                finished = process.poll() is not None
                seen = _report_progress(progress, seen, on_step)
                if finished:
                    break
                time.sleep(POLL_SECONDS)
        except BaseException:
            process.terminate()
            process.wait(timeout=30)
            raise
    if process.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(
            f"accelerate launch exited with {process.returncode} (log: {log_path}):\n{tail}"
        )


def _report_progress(progress: Path, seen: int, on_step: StepCallback | None) -> int:
    """Pass the complete lines of ``progress`` after the first ``seen`` to ``on_step``;
    return how many lines have been passed."""
    if not progress.exists():
        return seen
    lines = progress.read_text(encoding="utf-8").split("\n")[:-1]  # the last may be partial
    for line in lines[seen:]:
        step, total, loss = json.loads(line)
        if on_step:
            on_step(step, total, loss)
    return max(seen, len(lines))


def main(job_path: str) -> None:
    """One worker: train as the job says; rank 0 writes progress, the model and the result."""
    import dataclasses

    from trainer.finetune import fine_tune

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    values = job["settings"]
    values["matryoshka_dims"] = tuple(values["matryoshka_dims"])
    settings = TrainSettings(**values)
    folder = Path(job_path).parent
    rank = int(os.environ.get("RANK", "0"))

    def on_step(step: int, total: int, loss: float | None) -> None:
        if rank == 0:
            with (folder / "progress.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps([step, total, loss]) + "\n")

    result = fine_tune(
        job["base_model"],
        job["rows"],
        job["output_dir"],
        settings,
        guide_model=job["guide_model"],
        on_step=on_step,
    )
    _record_worker(folder, rank)
    if rank == 0:
        data = dataclasses.asdict(result)
        data["model_path"] = str(result.model_path)
        partial = folder / "result.json.tmp"
        partial.write_text(json.dumps(data), encoding="utf-8")
        partial.replace(folder / "result.json")


def _record_worker(folder: Path, rank: int) -> None:
    """``rank-<r>.json``: how this worker was connected (world size, backend), for the log."""
    import torch.distributed as dist

    connected = dist.is_available() and dist.is_initialized()
    info = {
        "rank": rank,
        "world_size": dist.get_world_size() if connected else 1,
        "backend": dist.get_backend() if connected else None,
    }
    (folder / f"rank-{rank}.json").write_text(json.dumps(info), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
