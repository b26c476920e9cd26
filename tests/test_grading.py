"""End to end: full marks, zero for stubs, results.json, and bad submissions contained."""
import json
import os
import subprocess
import sys

import pytest
import torch
from gradescope_schema import check
from helpers import (ASSIGNMENT, FIXED_SEED, ROOT, SOLUTIONS, copy_solutions, full, make_variant, messages, scores,
                     write_submission)

from autograder import cli, registry

from autograder.engine import runner
from autograder.engine.sandbox import EnvironmentFailure, Limits

FAST = Limits(call_timeout=3.0)
RNN = ["rnn_layers"]


def cli_grade(sub, out):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def instructor_entries(data):
    """The entries of instructor_tests/ (autograder/verbs/instructor.py marks them in extra_data)."""
    return [t for t in data["tests"] if "instructor_test" in t.get("extra_data", {})]


def check_results_schema(data, functions):
    check(data)  # Gradescope's specification (tests/gradescope_schema.py)
    sandbox = [t for t in data["tests"] if t.get("tags") == ["sandbox"]]  # which isolation layers were active
    assert len(sandbox) == 1 and sandbox[0]["visibility"] == "hidden" and sandbox[0]["max_score"] == 0, sandbox
    kit = [t for t in data["tests"] if t not in instructor_entries(data) + sandbox]
    names = set()
    for t in kit:
        assert t["tags"][0] in t["name"]
        assert 0 <= t["score"] <= t["max_score"] or t["max_score"] == 0
        names.add(t["tags"][0])
    assert names == {fn.name for fn in functions}
    graded = sum(t["max_score"] for t in kit)
    assert abs(graded - sum(fn.points for fn in functions)) < 1e-9


def test_solutions_get_full_marks_through_the_cli(tmp_path):
    out = str(tmp_path / "results.json")
    r = cli_grade(SOLUTIONS, out)
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    check_results_schema(data, registry.FUNCTIONS)
    assert instructor_entries(data) and all(t["status"] == "passed" for t in instructor_entries(data))
    assert data["score"] == sum(t.get("max_score", 0) for t in data["tests"]), r.stdout
    for fn in registry.FUNCTIONS:
        assert fn.name in r.stdout  # the table names every function


def test_stubs_get_zero_with_each_stubs_message(tmp_path):
    out = str(tmp_path / "results.json")
    r = cli_grade(ASSIGNMENT, out)
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    check_results_schema(data, registry.FUNCTIONS)
    assert data["score"] == 0
    for t in data["tests"]:
        if t["visibility"] == "visible":
            assert "not implemented yet" in t["output"], t["output"]


def test_grader_failure_still_writes_results(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("oracle exploded")
    monkeypatch.setattr(registry, "plan", boom)
    out = str(tmp_path / "results.json")
    assert cli.main(["grade", SOLUTIONS, "-o", out]) == 1
    data = json.load(open(out))
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    assert visible and "autograder failed" in visible[0]["name"]
    assert "oracle exploded" not in json.dumps(visible) and "oracle exploded" in json.dumps(data)


def test_files_one_folder_down_are_found(plans, tmp_path):
    copy_solutions(str(tmp_path / "sub" / "hw3"))
    report = runner.grade(str(tmp_path / "sub"), plans(RNN), FAST)
    assert scores(report) == full(report)


@pytest.mark.parametrize("content,words", [
    (None, "was not found"),
    ("", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff", "not UTF-8"),
    ("def rnn_step_forward(x:\n    pass\n", "syntax error at line 1"),
    ("import torch\nraise ValueError('broken at import')\n", "ValueError: broken at import"),
    ("import numpy_not_installed_anywhere\n", "ModuleNotFoundError"),
    ("import sys\nsys.exit(3)\n", "SystemExit"),
    ("import os\nos._exit(4)\n", "exited with status 4"),
    ("while True:\n    pass\n", "timed out"),
])
def test_a_broken_file_costs_its_functions_only_with_a_clear_message(plans, tmp_path, content, words):
    sub = tmp_path / "sub"
    sub.mkdir()
    if content is not None:
        write_submission(str(sub), {"rnn_layers.py": content})
    report = runner.grade(str(sub), plans(RNN), FAST)
    assert all(s == 0 for s in scores(report).values())
    for fn in registry.select(files=RNN):
        assert words in messages(report, fn.name), messages(report, fn.name)
    assert report.seconds < 60


HOSTILE_FUNCTION = [
    ("hangs", "out, cache = None, None\n    while True:\n        pass\n", "timed out"),
    ("os._exit", "import os\n    os._exit(9)\n", "exited with status 9"),
    ("sys.exit", "import sys\n    sys.exit(1)\n", "SystemExit"),
    ("returns a list", "return [W[x]], None\n", "should be a torch.Tensor, got list"),
    ("returns numpy", "return W[x].numpy(), None\n", "got numpy.ndarray"),
    ("returns None", "return None\n", "expected a tuple of 2"),
    ("returns NaN", "return W[x] * float('nan'), (x, W.shape[0])\n", "contains nan"),
    ("wrong shape", "return W[x][:, :, :-1], (x, W.shape[0])\n", "has shape"),
]


@pytest.mark.parametrize("name,body,words", HOSTILE_FUNCTION, ids=[h[0] for h in HOSTILE_FUNCTION])
def test_a_bad_function_costs_only_itself_and_its_callers(plans, tmp_path, name, body, words):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n",
         "    # BEGIN SOLUTION\n    " + body + "    out = W[x]\n")])
    report = runner.grade(sub, plans(RNN), FAST)
    got, best = scores(report), full(report)
    broken = {"word_embedding_forward"}
    if name not in ("returns NaN", "wrong shape"):  # the backward check needs a cache from the forward
        broken.add("word_embedding_backward")
    assert got["word_embedding_forward"] == 0
    for fn in broken:
        assert got[fn] < best[fn]
    assert words in messages(report, "word_embedding_forward"), messages(report, "word_embedding_forward")
    for fn in set(got) - broken:
        assert got[fn] == best[fn], (fn, messages(report, fn))


def test_every_case_is_drawn_each_run_and_public_ones_fixed_only_for_the_checker():
    """The grader draws every case, public ones included, at grading time (the release ships the public
    inputs and torch's answers); the public checker's plan keeps the public cases' fixed inputs."""
    fns = registry.select(names=["rnn_forward"])
    a, b = registry.plan(fns, device="cpu"), registry.plan(fns, device="cpu")
    for pa, pb in zip(a.checks, b.checks):
        assert pa.fresh and not torch.equal(pa.inputs["x"], pb.inputs["x"]), pa.case.label
    c, d = (registry.plan(fns, device="cpu", public_inputs="fixed") for _ in range(2))
    for pc, pd in zip(c.checks, d.checks):
        assert torch.equal(pc.inputs["x"], pd.inputs["x"]) == (not pc.case.hidden), pc.case.label


def test_backward_feedback_says_when_the_students_forward_is_wrong(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)", "next_h = torch.tanh(x @ Wx + prev_h @ Wh)")])
    report = runner.grade(sub, plans(RNN), FAST)
    text = messages(report, "rnn_step_backward")
    assert "built the cache with your rnn_step_forward, whose output is wrong (next_h is wrong:" in text, text
    assert "fix rnn_step_forward first" in text


def test_inputs_modified_in_place_are_their_own_failure_and_do_not_corrupt_values(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [
        ("    db = dout.sum(dim=(0, 1))  # (M,)\n", "    db = dout.sum(dim=(0, 1))  # (M,)\n    dout *= 0\n")])
    report = runner.grade(sub, plans(RNN), FAST)
    fr = next(f for f in report.functions if f.fn.name == "temporal_affine_backward")
    failed = [c for c in fr.checks if not c.passed]
    assert [c.name for c in failed] == ["inputs left unchanged"], [(c.name, c.message) for c in failed]
    assert "dout" in failed[0].message


def test_a_worker_that_cannot_start_is_the_graders_failure_not_the_students(plans, tmp_path):
    """Before any student file is imported, a failed start is the environment's fault: the CLI
    writes results.json as an autograder failure (the details in an entry instructors see),
    never as the student's zero with a question about sys.exit."""
    with pytest.raises(EnvironmentFailure, match="before any student code ran"):
        runner.grade(SOLUTIONS, plans(RNN), Limits(startup_timeout=0.01))
    out = str(tmp_path / "results.json")
    # (a worker forked from the zygote is ready within 0.01 s: this is about a fresh interpreter)
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", SOLUTIONS, "-o", out, "--device", "cpu",
                        "--files", "rnn_layers", "--no-forkserver"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, AUTOGRADER_STARTUP_TIMEOUT="0.01"))
    assert r.returncode == 1
    data = json.load(open(out))
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    hidden = [t for t in data["tests"] if t["visibility"] == "hidden"]
    assert data["score"] == 0 and [t["name"] for t in visible] == ["autograder failed"]
    assert "not your code's fault" in data["output"]
    assert "before any student code ran" in hidden[0]["output"]
    assert "grading machine's environment" in hidden[0]["output"]
    assert "sys.exit" not in json.dumps(data)


def test_public_feedback_names_an_overflow_and_an_in_place_edit_with_their_fixes(plans, tmp_path):
    """The two most common real mistakes in student code (issue 12): a hand-written tanh that
    overflows in float32, and `dnext_c += ...`. Both show in the visible entry, with the fix."""
    from autograder.engine import results

    sub = make_variant(str(tmp_path / "rnn"), "rnn_layers.py", [(
        "next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
        "z = x @ Wx + prev_h @ Wh + b\n    next_h = (1 - torch.exp(-2 * z)) / (1 + torch.exp(-2 * z))  # (N, H)")])
    plan = registry.plan(registry.select(["rnn_step_forward"]), device="cpu", seed=FIXED_SEED)
    visible = results.gradescope(runner.grade(sub, plan, FAST))["tests"][0]
    assert visible["visibility"] == "visible" and visible["score"] < visible["max_score"]
    assert "float32, saturated (pre-activations of 50-100)" in visible["output"] and "Hint: exp overflowed for large inputs" in visible["output"]

    sub = make_variant(str(tmp_path / "lstm"), "lstm_layers.py", [(
        "dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)  # (N, H) total gradient of next_c",
        "dnext_c += dnext_h * o * (1 - tanh_c * tanh_c)\n    dc = dnext_c")])
    plan = registry.plan(registry.select(["lstm_step_backward"]), device="cpu", seed=FIXED_SEED)
    visible = results.gradescope(runner.grade(sub, plan, FAST))["tests"][0]
    assert "modified its input dnext_c in place" in visible["output"]
    assert "write `dc = dnext_c + ...` (a new tensor) instead of `dnext_c += ...`" in visible["output"]
