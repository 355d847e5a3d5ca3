"""The same training code runs on every Keras backend we support (the GPU path is JAX)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import last_json, run_cli


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_one_short_epoch_on_each_backend(backend, tmp_path):
    result = run_cli(
        "train",
        "conv6-dense128",
        "--limit",
        "4000",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--json",
        env={"KERAS_BACKEND": backend},
    )
    assert result.returncode == 0, result.stderr
    assert "cuda" not in result.stderr.lower() and "onednn" not in result.stderr.lower()
    summary = last_json(result.stdout)
    assert summary["test_accuracy"] > 0.7  # one epoch on 4000 digits; chance is 0.1
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["versions"]["backend"] == backend
    assert config["versions"]["backend_version"]
