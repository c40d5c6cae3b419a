"""LLM thread defaults: the cores that are free now, or CURATOR_THREADS."""

from __future__ import annotations

import os

import pytest

from curator.llm import local
from curator.services.llm import open_llm


@pytest.mark.parametrize(
    ("cores", "load", "free"),
    [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.3, 1), (2, 7.0, 1), (8, 2.6, 5), (1, 0.0, 1)],
)
def test_free_cores_are_the_usable_ones_minus_the_load(cores, load, free):
    assert local.free_cores(cores, load) == free


def test_usable_cores_follow_the_affinity_mask():
    assert local.usable_cores() == len(os.sched_getaffinity(0))
    assert local.load_average() == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_default_threads_are_the_free_cores(monkeypatch):
    monkeypatch.delenv("CURATOR_THREADS", raising=False)
    monkeypatch.setattr(local, "usable_cores", lambda: 4)
    monkeypatch.setattr(local, "load_average", lambda: 1.2)
    assert local.default_threads() == 3
    monkeypatch.setattr(local, "load_average", lambda: 9.0)
    assert local.default_threads() == 1


def test_curator_threads_overrides_and_is_checked(monkeypatch):
    monkeypatch.setenv("CURATOR_THREADS", "3")
    assert local.default_threads() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv("CURATOR_THREADS", bad)
        with pytest.raises(ValueError, match="CURATOR_THREADS must be a whole number"):
            local.default_threads()


def test_open_llm_configures_the_default_threads(monkeypatch, tmp_path):
    before = (local._config.n_threads, local._config.n_threads_batch, local._config.models_dir)
    try:
        monkeypatch.setenv("CURATOR_THREADS", "1")
        open_llm(tmp_path, local_settings(), use_cache=False)
        assert (local._config.n_threads, local._config.n_threads_batch) == (1, 1)
        open_llm(tmp_path, local_settings(), threads=2, use_cache=False)
        assert (local._config.n_threads, local._config.n_threads_batch) == (2, 2)
    finally:
        local._config.n_threads, local._config.n_threads_batch, local._config.models_dir = before


def local_settings():
    from curator.llm.client import LLMSettings

    return LLMSettings(model="local/gemma3-270m")
