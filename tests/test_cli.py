"""The `curator` command end to end, in-process and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import write

from curator.cli import main


def run(capsys, tmp_path, *args):
    code = main(["--data-dir", str(tmp_path / "data"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_ingest_status(capsys, tmp_path, scifact_dir):
    code, out, _ = run(capsys, tmp_path, "init", "--description", "SciFact test")
    assert code == 0 and "project:  default" in out
    assert (tmp_path / "data" / "curator.db").exists()

    code, out, _ = run(capsys, tmp_path, "ingest", str(scifact_dir / "corpus.jsonl"))
    assert code == 0 and "5183 passages added" in out
    code, out, _ = run(capsys, tmp_path, "ingest", str(scifact_dir / "corpus.jsonl"))
    assert code == 0 and "0 passages added" in out and "5183 already stored" in out

    code, out, _ = run(capsys, tmp_path, "status")
    assert code == 0
    assert "5,183 passages from 5,183 documents" in out
    assert "ingest   done" in out


def test_bad_file_exits_non_zero_with_file_line_and_field(capsys, tmp_path):
    good = write(tmp_path / "good.jsonl", json.dumps({"_id": "1", "text": "kept"}) + "\n")
    bad = write(tmp_path / "bad.jsonl", json.dumps({"_id": "2", "title": "no text"}) + "\n")
    code, out, err = run(capsys, tmp_path, "ingest", str(good), str(bad))
    assert code == 1
    assert "1 passages added" in out
    assert f"{bad}:1: field 'text': missing" in err
    code, out, _ = run(capsys, tmp_path, "status")
    assert "1 passages from 1 documents" in out


def test_skip_mode_lists_skipped_records(capsys, tmp_path):
    path = write(tmp_path / "c.csv", "id,text\n1,fine\n2,\n3,also fine\n")
    code, out, err = run(capsys, tmp_path, "ingest", "--on-error", "skip", str(path))
    assert code == 0 and "2 passages added" in out
    assert f"skipped: {path}:3: field 'text': empty" in err


def test_chunking_options(capsys, tmp_path):
    path = write(tmp_path / "docs" / "long.txt", " ".join(f"w{i}" for i in range(300)))
    code, out, _ = run(
        capsys,
        tmp_path,
        "ingest",
        "--chunk",
        "--chunk-words",
        "100",
        "--chunk-overlap",
        "0",
        str(path.parent),
    )
    assert code == 0 and "3 passages added" in out


def test_status_of_unknown_project(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path, "--project", "nope", "status")
    assert code == 2 and "no project named 'nope'" in err


def test_serve_refuses_a_public_address(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path, "serve", "--host", "0.0.0.0")
    assert code == 2 and "refusing to listen" in err


def test_cli_start_does_not_import_heavy_libraries():
    probe = (
        "import sys; from curator.cli import build_parser; build_parser();"
        "import curator.services.ingest, curator.services.status;"
        "heavy = [m for m in ('torch', 'gradio', 'litellm', 'sentence_transformers', 'pandas')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
