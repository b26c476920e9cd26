"""course.toml: every key is checked (a bad one is named), and what it sets reaches the results."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, SOLUTIONS

from autograder import config, registry
from autograder.engine.sandbox import Limits


def write(tmp_path, text):
    path = tmp_path / "course.toml"
    path.write_text(text)
    return str(path)


def test_the_shipped_course_toml_is_valid_and_changes_nothing(tmp_path):
    cfg = config.load()
    assert cfg.points == {} and cfg.visibility == {} and cfg.float32 and cfg.cuda
    assert cfg.limits() == Limits.from_env()


@pytest.mark.parametrize("text,named", [
    ("[grading]\nfloat32 = 1\n", "[grading] float32"),
    ("[grading]\nhidden_details = \"later\"\n", "[grading] hidden_details"),
    ("[grading]\nfloat16 = true\n", "[grading] float16: unknown key"),
    ("[limits]\ncall_timeout = -1\n", "[limits] call_timeout"),
    ("[limits]\nmemory_mb = \"lots\"\n", "[limits] memory_mb"),
    ("[limits]\nbudget = true\n", "[limits] budget"),
    ("[points]\nrnn_fwd = 3\n", "[points] rnn_fwd"),
    ("[points]\nrnn_forward = -3\n", "[points] rnn_forward"),
    ("[visibility]\nrnn_forward = \"secret\"\n", "[visibility] rnn_forward"),
    ("[grading\n", "not valid TOML"),
    ("[gradnig]\nfloat32 = true\n", "unknown section [gradnig]"),
])
def test_a_bad_value_is_named(tmp_path, text, named):
    with pytest.raises(config.ConfigError) as e:
        config.load(write(tmp_path, text))
    assert named in str(e.value)


def test_apply_sets_points_and_drops_float32_and_cuda_cases(tmp_path):
    cfg = config.load(write(tmp_path, "[grading]\nfloat32 = false\ncuda = false\n[points]\nrnn_forward = 7.5\n"))
    before = [(fn.points, list(fn.cases)) for fn in registry.FUNCTIONS]
    fns = config.apply(cfg, registry.select(["rnn_forward", "rnn_backward"]))
    assert fns[0].points == 7.5 and fns[1].points == registry.BY_NAME["rnn_backward"].points
    for fn in fns:
        assert fn.cases and all(c.dtype == torch.float64 and c.device == "cpu" for c in fn.cases)
    # copies: the registry's own entries are untouched (the plan carries the course's versions)
    assert [(fn.points, list(fn.cases)) for fn in registry.FUNCTIONS] == before
    assert registry.BY_NAME["rnn_forward"].points != 7.5
    assert any(c.dtype == torch.float32 for c in registry.BY_NAME["rnn_forward"].cases)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    cfg = config.load(write(tmp_path, "[limits]\ncall_timeout = 4\nmemory_mb = 500\nbudget = 100\n"))
    assert (cfg.limits().call_timeout, cfg.limits().memory_mb, cfg.budget_seconds()) == (4.0, 500, 100.0)
    monkeypatch.setenv("AUTOGRADER_MEMORY_MB", "700")
    monkeypatch.setenv("AUTOGRADER_BUDGET", "50")
    assert (cfg.limits().memory_mb, cfg.budget_seconds(), cfg.budget_seconds(20.0)) == (700, 50.0, 20.0)


def test_points_and_visibility_reach_results_json(tmp_path):
    path = write(tmp_path, "[points]\nclip_grad_norm = 10\n[visibility]\nclip_grad_norm = \"after_due_date\"\n")
    out = str(tmp_path / "results.json")
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", SOLUTIONS, "-o", out, "--device", "cpu",
                        "--functions", "clip_grad_norm", "--config", path], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    entry = json.load(open(out))["tests"][0]
    assert (entry["score"], entry["max_score"], entry["visibility"]) == (10, 10, "after_due_date")


def test_the_cli_stops_on_a_bad_config_with_the_key_named(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", SOLUTIONS, "--config",
                        write(tmp_path, "[limits]\nbudget = 0\n")], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2 and "[limits] budget" in r.stderr
