"""Writers for curated datasets: plain data in (a ``TrainingSet``), files out.

Formats (see ``docs/export.md``):

- ``st-pairs``, ``st-triplets``, ``st-ntuples``, ``st-margin-mse``: sentence-transformers
  columns as a Hugging Face ``DatasetDict`` (``save_to_disk``) with Parquet files per split;
- ``flag``: FlagEmbedding JSONL (``query``, ``pos``, ``neg``, scores, ``prompt``);
- ``beir``: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,test}.tsv``;
- ``judgments-jsonl``, ``judgments-csv``: the judgment history, for audits.

The trainer's ``eval`` split is written as ``test`` everywhere (the name Hugging Face and
BEIR readers know), the ``train`` split as ``train``; the two never share a file.

Everything is written through :func:`atomic_directory` (a temporary sibling folder renamed
onto the target at the end) or :func:`atomic_write` (a temporary sibling file), so an
interrupted export leaves nothing half-written under the target's name. The temporary
siblings are named ``.NAME.PID.xxxx.partial``; the next write of ``NAME`` removes those
whose process is gone (a killed export). ``force`` swaps the new folder and the old one in
one step where the system can (Linux ``renameat2(RENAME_EXCHANGE)``), so the target is
never missing; elsewhere the old one is moved aside first, and the next write puts it back
if a kill came between the two renames.

No database or UI imports here; ``datasets`` is imported inside the function that uses it.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from curator.pipeline.training_set import (
    Example,
    TrainingSet,
    margin_mse_rows,
    teacher_scores,
    training_rows,
)
from curator.pipeline.training_set import choose_score_source as _choose_score_source

ST_FORMATS = ("st-pairs", "st-triplets", "st-ntuples", "st-margin-mse")
FORMATS = (*ST_FORMATS, "flag", "beir", "judgments-jsonl", "judgments-csv")
#: the trainer's split -> the name written to files and dataset splits
SPLIT_NAMES = {"train": "train", "eval": "test"}
BEIR_HEADER = ("query-id", "corpus-id", "score")
JUDGMENT_COLUMNS = (
    "judgment_id",
    "query_id",
    "task",
    "query",
    "edited_query",
    "decision",
    "reject_reason",
    "annotator",
    "created_at",
    "provenance",
    "positives",
    "negatives",
    "false_negatives",
    "retracts_judgment_id",
    "effective",
    "used_in_export",
    "split",
    "query_model",
    "query_prompt_version",
    "note",
)


class ExportError(ValueError):
    """An export that cannot be written as asked (the message says why)."""


class TargetExists(ExportError):
    """The target exists and ``force`` was not given."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} exists; pass --force to replace it")


# --- atomic writes -----------------------------------------------------------------------


@contextmanager
def atomic_write(
    path: Path, mode: str = "w", *, encoding: str | None = "utf-8", force: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` when the
    block ends normally, delete it when the block raises. With ``force=False`` an existing
    ``path`` raises :class:`TargetExists` (checked before and again at the rename)."""
    path = Path(path)
    if path.exists() and not force:
        raise TargetExists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_siblings(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent
    )
    os.close(handle)
    temp = Path(temporary)
    try:
        kwargs: dict[str, Any] = {"newline": ""} if "b" not in mode else {}
        if "b" not in mode:
            kwargs["encoding"] = encoding
        with temp.open(mode, **kwargs) as stream:
            yield stream
        if path.exists() and not force:
            raise TargetExists(path)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(target: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends normally it
    replaces ``target`` (the old one is removed only after the rename), when it raises it is
    removed and ``target`` is left as it was. An existing ``target`` needs ``force``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_siblings(target)
    if target.exists() and not force:
        raise TargetExists(target)
    temp = Path(
        tempfile.mkdtemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=".partial", dir=target.parent
        )
    )
    try:
        yield temp
        os.chmod(temp, 0o777 & ~_umask())
        if target.exists() or target.is_symlink():
            if not force:
                raise TargetExists(target)
            if not _exchange(temp, target):  # temp now holds the old target when it did
                old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
                os.replace(temp, target)
                temp = old
            _remove(temp)
        else:
            os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise


def clean_stale_siblings(target: Path) -> None:
    """Remove what killed writes of ``target`` left beside it: ``.NAME.PID.xxxxxxxx.partial``
    whose process is gone (and the older ``.NAME.xxxxxxxx.partial``, without a pid); and
    when ``target`` is missing but a ``.NAME.old-xxxxxxxx`` is there (a kill between the two
    renames of a replacement), rename the newest one back onto ``target``."""
    name = re.escape(f".{target.name}.")
    partial = re.compile(name + r"(?:(\d+)\.)?[a-z0-9_]{8}\.partial")
    old_copy = re.compile(name + r"old-[0-9a-f]{8}")
    siblings = list(target.parent.iterdir())
    old = sorted(
        (p for p in siblings if old_copy.fullmatch(p.name)), key=lambda p: p.stat().st_mtime
    )
    if old and not (target.exists() or target.is_symlink()):
        os.replace(old.pop(), target)
    for path in old:
        _remove(path)
    for path in siblings:
        match = partial.fullmatch(path.name)
        if match and not (match.group(1) and _process_alive(int(match.group(1)))):
            _remove(path)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` in one step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# --- sentence-transformers ---------------------------------------------------------------


def choose_score_source(training_set: TrainingSet, wanted: str = "auto") -> str | None:
    """``training_set.choose_score_source``, its error as an :class:`ExportError`."""
    try:
        return _choose_score_source(training_set, wanted)
    except ValueError as error:
        raise ExportError(str(error)) from None


def st_columns(fmt: str, negatives: int = 3) -> list[str]:
    """The column names of a sentence-transformers format, in order."""
    if fmt == "st-pairs":
        return ["anchor", "positive"]
    if fmt == "st-triplets":
        return ["anchor", "positive", "negative"]
    if fmt in ("st-ntuples", "st-margin-mse"):
        if negatives < 1:
            raise ExportError(f"{fmt} needs --negatives of at least 1, got {negatives}")
        names = ["anchor", "positive", *[f"negative_{i}" for i in range(1, negatives + 1)]]
        return [*names, "label"] if fmt == "st-margin-mse" else names
    raise ExportError(f"not a sentence-transformers format: {fmt!r}")


def st_rows(
    training_set: TrainingSet,
    fmt: str,
    split: str,
    *,
    negatives: int = 3,
    score_source: str | None = None,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of one split for a sentence-transformers format, and how many (example,
    positive) pairs were left out.

    Pairs, triplets and n-tuples come from ``training_set.training_rows`` (one row per
    positive; missing hard negatives filled with other queries' positives, as the trainer
    does). MarginMSE rows use only the example's own negatives that have a score from
    ``score_source`` (fillers have none), ``label`` = [score(positive) - score(negative_i)];
    a pair without enough scored negatives is left out."""
    st_columns(fmt, negatives)  # checks the format and the number of negatives
    if fmt == "st-margin-mse":
        return margin_mse_rows(training_set, split, negatives, score_source)
    wanted = {"st-pairs": 0, "st-triplets": 1}.get(fmt, negatives)
    rows = training_rows(training_set, split, negatives=wanted, seed=seed)
    if fmt == "st-triplets":
        rows = [
            {"anchor": r["anchor"], "positive": r["positive"], "negative": r["negative_1"]}
            for r in rows
        ]
    pairs = sum(len(e.positives) for e in training_set.examples if e.split == split)
    return rows, pairs - len(rows)


def write_st_dataset(
    folder: Path, splits: dict[str, list[dict[str, Any]]], columns: list[str]
) -> dict[str, int]:
    """Write ``splits`` (split name -> rows with ``columns``) as a ``DatasetDict`` saved
    with ``save_to_disk`` into ``folder`` and as ``folder/parquet/<split>.parquet``.
    Returns the rows per split. Text columns are strings, ``label`` a list of float32.
    A split without rows (no held-out queries) is left out of both, since neither
    ``load_from_disk`` nor ``load_dataset("parquet", ...)`` can read an empty split."""
    import datasets

    written = {name: rows for name, rows in splits.items() if rows} or splits

    sequence = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features(
        {
            name: sequence(datasets.Value("float32"))
            if name == "label"
            else datasets.Value("string")
            for name in columns
        }
    )
    dataset_dict = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(
                {c: [row[c] for row in rows] for c in columns}, features=features
            )
            for name, rows in written.items()
        }
    )
    dataset_dict.save_to_disk(str(folder))
    (folder / "parquet").mkdir(exist_ok=True)
    for name, dataset in dataset_dict.items():
        dataset.to_parquet(str(folder / "parquet" / f"{name}.parquet"))
    return {name: len(rows) for name, rows in splits.items()}


# --- FlagEmbedding -----------------------------------------------------------------------


def flag_rows(
    training_set: TrainingSet, split: str, score_source: str | None = None
) -> Iterator[dict[str, Any]]:
    """One FlagEmbedding row per example of ``split``: ``query``, ``pos`` and ``neg``
    (texts), ``prompt`` (the task description), and ``pos_scores`` / ``neg_scores`` when
    ``score_source`` scores every passage of the row (else the two keys are left out)."""
    for example in training_set.examples:
        if example.split != split:
            continue
        row: dict[str, Any] = {
            "query": example.query,
            "pos": [training_set.text(example, p) for p in example.positives],
            "neg": [training_set.text(example, n) for n in example.negatives],
        }
        scores = teacher_scores(example, score_source)
        if scores and all(p in scores for p in (*example.positives, *example.negatives)):
            row["pos_scores"] = [scores[p] for p in example.positives]
            row["neg_scores"] = [scores[n] for n in example.negatives]
        row["prompt"] = example.task
        yield row


# --- BEIR --------------------------------------------------------------------------------


def beir_query_id(example: Example) -> str:
    """The query's id in BEIR files: the database id as a string."""
    return str(example.query_id)


def qrels_rows(training_set: TrainingSet, split: str) -> Iterator[tuple[str, str, int]]:
    """(query-id, corpus-id, score) for ``split``: positives and false negatives (passages
    that answer the query) score 1, hard negatives 0."""
    for example in training_set.examples:
        if example.split != split:
            continue
        query_id = beir_query_id(example)
        for passage in (*example.positives, *example.false_negatives):
            yield query_id, training_set.passages[passage].external_id, 1
        for passage in example.negatives:
            yield query_id, training_set.passages[passage].external_id, 0


def write_beir(
    folder: Path, training_set: TrainingSet, corpus: Iterable[tuple[str, str, str]]
) -> dict[str, int]:
    """``corpus.jsonl`` from ``corpus`` ((external id, title, text), the whole corpus, so
    retrieval over it is meaningful), ``queries.jsonl`` (``_id``, ``text``, ``metadata``
    with task and split) and ``qrels/train.tsv``, ``qrels/test.tsv`` with a header.
    Returns counts of documents, queries and qrels lines per split."""
    counts: dict[str, int] = {"corpus": 0, "queries": 0}
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for external_id, title, text in corpus:
            out.write(_json({"_id": external_id, "title": title, "text": text}) + "\n")
            counts["corpus"] += 1
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for example in training_set.examples:
            row = {
                "_id": beir_query_id(example),
                "text": example.query,
                "metadata": {"task": example.task, "split": SPLIT_NAMES[example.split]},
            }
            out.write(_json(row) + "\n")
            counts["queries"] += 1
    (folder / "qrels").mkdir()
    for split, name in SPLIT_NAMES.items():
        lines = 0
        with (folder / "qrels" / f"{name}.tsv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, delimiter="\t", lineterminator="\n")
            writer.writerow(BEIR_HEADER)
            for row in qrels_rows(training_set, split):
                writer.writerow(row)
                lines += 1
        counts[f"qrels_{name}"] = lines
    return counts


# --- JSONL / CSV -------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` one JSON object a line (UTF-8); returns how many."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(_json(row) + "\n")
            count += 1
    return count


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Iterable[str]) -> int:
    """Write ``rows`` as CSV with a header of ``columns``; lists and dicts become JSON
    text, None an empty cell. Returns how many rows."""
    columns = list(columns)
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return _json(value)
    return value


def file_listing(folder: Path) -> dict[str, dict[str, Any]]:
    """Relative path -> {bytes, sha256} for every file under ``folder``."""
    listing: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda s=stream: s.read(1 << 20), b""):
                digest.update(block)
        listing[path.relative_to(folder).as_posix()] = {
            "bytes": path.stat().st_size,
            "sha256": digest.hexdigest(),
        }
    return listing
