"""`make bench`: a quick run writes a document that matches its schema. Timings are never asserted."""
import copy
import filecmp
import json
import os
import subprocess
import sys

import pytest

from tools import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(document, printed table) of `python -m tools.bench --quick`."""
    out = tmp_path_factory.mktemp("bench") / "sub" / "bench.json"  # its folder is created
    p = subprocess.run([sys.executable, "-m", "tools.bench", "--quick", "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(out) as f:
        return json.load(f), p.stdout


def test_quick_bench_matches_its_schema(quick):
    doc, printed = quick
    assert bench.validate(doc) == []
    assert doc["schema"] == "autograder-bench/1" and doc["quick"] is True
    one = doc["sections"]["one_submission"]
    assert set(one["runs"]) == {"no_instructor_tests", "with_instructor_tests", "numpy_no_instructor_tests"}
    assert one["runs"]["no_instructor_tests"]["phases_s"]["instructor_tests"] == 0
    numpy_run = one["runs"]["numpy_no_instructor_tests"]  # the NumPy track, measured in the same run
    assert numpy_run["phases_s"]["instructor_tests"] == 0 and "--track" in numpy_run["command"]
    assert "NumPy track: grade solutions/numpy" in printed
    assert {run["end_to_end_from"] for run in one["runs"].values()} == {"phased"}
    ref = doc["sections"]["reference_vs_torch"]
    assert {(r["layer"], r["dtype"]) for r in ref if r["device"] == "cpu"} == {
        (layer, dtype) for layer in bench.LAYERS for dtype in ("float32", "float64")}
    for r in ref:  # the two sides compute the same thing (weights mapped right): not a timing
        assert r["max_rel_error"] < 1e-3, r
    names = [t["name"] for t in doc["targets"]]
    assert "one submission (no instructor tests) / import torch" in names
    assert "reference LSTM forward+backward / nn.LSTM + autograd (cpu, float32)" in names
    header = printed.splitlines()[0].split()
    assert header == ["measure", "value", "baseline", "ratio", "target", "met?"]
    for part in ("1. Grading one submission", "2. Batch throughput", "3. Reference solutions",
                 "lstm fwd+bwd cpu float32"):
        assert part in printed


def test_quick_batch_section(quick):
    batch = quick[0]["sections"]["batch"]
    assert batch["status"] == "ok", batch.get("reason")
    assert batch["n"] == 3 and batch["buggy"] == 1 and batch["one_by_one"]["sample"] == 1
    assert batch["results_files"] == 3


def test_submissions_for_the_batch(tmp_path):
    made = bench.make_submissions(str(tmp_path / "twenty"), 20) + bench.make_submissions(str(tmp_path / "four"), 4)
    assert [name for name, _ in made] == ["sub%03d" % i for i in range(20)] + ["sub%03d" % i for i in range(4)]
    buggy = [(name, bug) for name, bug in made if bug]
    assert [name for name, _ in buggy] == ["sub005", "sub015", "sub003"] and buggy[0][1] != buggy[1][1]
    for i, (name, bug) in enumerate(made):
        folder = tmp_path / ("twenty" if i < 20 else "four") / name
        changed = [f for f in os.listdir(os.path.join(ROOT, "solutions", "torch")) if f.endswith(".py")
                   and not filecmp.cmp(os.path.join(ROOT, "solutions", "torch", f), str(folder / f), shallow=False)]
        assert len(changed) == (1 if bug else 0), (name, bug, changed)


def _ok_batch():
    """A well-formed batch section."""
    return {"status": "ok", "n": 10, "buggy": 1, "jobs": 2, "seed": 1, "instructor_tests": False,
            "command": ["python", "-m", "autograder", "grade-batch"], "batch_s": 20.0, "per_minute": 30.0,
            "results_files": 10,
            "one_by_one": {"sample": 2, "names": ["sub000", "sub005"], "samples_s": [3.0, 5.0],
                           "per_submission_s": 4.0, "extrapolated_s": 40.0, "per_minute": 15.0},
            "ratio_to_one_by_one": 0.5,
            "no_forkserver": {"batch_s": 30.0, "per_minute": 20.0, "ratio_to_default": 1.5}}


def _broken(doc, edit):
    d = copy.deepcopy(doc)
    edit(d)
    return d


def test_validator_rejects_malformed_documents(quick):
    doc = quick[0]

    def set_path(*path, value):
        def edit(d):
            for key in path[:-1]:
                d = d[key]
            d[path[-1]] = value
        return edit

    ref_ratio = doc["sections"]["reference_vs_torch"][0]["forward"]["ratio"]
    target = doc["targets"][0]
    cases = {
        "schema is": set_path("schema", value="autograder-bench/0"),
        "machine lacks 'torch'": lambda d: d["machine"].pop("torch"),
        "document lacks 'targets'": lambda d: d.pop("targets"),
        "reference_vs_torch[0].forward.ratio": set_path("sections", "reference_vs_torch", 0, "forward", "ratio",
                                                        value=ref_ratio * 2),
        "times must be positive": set_path("sections", "reference_vs_torch", 1, "forward_backward", "torch_s",
                                           value=0.0),
        "targets[0].met disagrees": set_path("targets", 0, "met", value=not target["met"]),
        "targets[0]: value and limit": set_path("targets", 0, "value", value="fast"),
        "import_torch_s is not a positive number": set_path("sections", "one_submission", "import_torch_s", value=-1.0),
        "ratio_to_import_torch": set_path("sections", "one_submission", "runs", "no_instructor_tests",
                                          "ratio_to_import_torch", value=0.1),
        "phases_s lacks 'oracle'": lambda d: d["sections"]["one_submission"]["runs"]["with_instructor_tests"][
            "phases_s"].pop("oracle"),
        "machine.date is not ISO 8601": set_path("machine", "date", value="yesterday"),
        "duplicate names": lambda d: d["targets"].append(dict(d["targets"][0])),
    }
    for expected, edit in cases.items():
        problems = bench.validate(_broken(doc, edit))
        assert any(expected in p for p in problems), (expected, problems)


def test_validator_on_batch_sections(quick):
    doc = quick[0]
    assert bench.validate(_broken(doc, lambda d: d["sections"].update(batch=_ok_batch()))) == []
    cases = {
        "batch.per_minute": lambda b: b.update(per_minute=99.0),
        "extrapolated_s != per_submission_s * n": lambda b: b["one_by_one"].update(extrapolated_s=41.0),
        "batch.ratio_to_one_by_one": lambda b: b.update(ratio_to_one_by_one=2.0),
        "no_forkserver.ratio_to_default": lambda b: b["no_forkserver"].update(ratio_to_default=1.0),
        "batch.one_by_one.samples_s": lambda b: b["one_by_one"].update(samples_s=[3.0]),
        "batch.status is": lambda b: b.update(status="maybe"),
        "batch.no_forkserver is not an object": lambda b: b.update(no_forkserver=None),
        "batch.reason is not a string": lambda b: b.clear() or b.update(status="failed"),
    }
    for expected, edit in cases.items():
        batch = _ok_batch()
        edit(batch)
        problems = bench.validate(_broken(doc, lambda d: d["sections"].update(batch=batch)))
        assert any(expected in p for p in problems), (expected, problems)
