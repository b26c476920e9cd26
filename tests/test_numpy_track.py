"""The NumPy track (course.toml's `track = "numpy"`): the same registry, cases and torch oracles grade
functions written in NumPy.

The NumPy reference gets full marks and the NumPy stubs zero; the two tracks' references agree on every
public case; what a NumPy student may not do (a torch operator, an autograd library) costs the function its
points; a function is found in another file when its own file is missing (a CS231n-style rnn_layers.py
holding the LSTM); NumPy's overflow warnings reach neither the worker's exit nor the student's output.
The bug corpus is tests/test_buggy_numpy.py; the Gradescope zip, check.py, grade-batch and the notebooks
on this track are tested beside their torch twins.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import NP_ASSIGNMENT, NP_SOLUTIONS, ROOT, SOLUTIONS, copy_solutions, full, make_variant, messages, scores

from autograder import registry
from autograder.engine import compare, plans, runner
from autograder.engine.spec import CACHE
from autograder.engine.steps import call_args


def test_reference_gets_full_marks_without_cuda_checks(np_plans):
    plan = np_plans()
    assert plan.track == "numpy" and not any(p.case.device == "cuda" for p in plan.checks)
    report = runner.grade(NP_SOLUTIONS, plan)
    assert scores(report) == full(report), {fr.fn.name: messages(report, fr.fn.name)[:300]
                                            for fr in report.functions if fr.score < fr.max_score}
    assert report.track == "numpy" and set(scores(report)) == {fn.name for fn in registry.FUNCTIONS}
    # every check ran (none was skipped for lack of a GPU), the vectorisation ones included
    assert all(c.passed for fr in report.functions for c in fr.checks)
    assert any(c.name.startswith("vectorised") for fr in report.functions for c in fr.checks)


def test_stubs_get_zero_with_each_stubs_message(np_plans):
    report = runner.grade(NP_ASSIGNMENT, np_plans())
    assert report.score == 0
    for fr in report.functions:
        assert "not implemented yet" in messages(report, fr.fn.name), fr.fn.name


def _load(path, name):
    """A reference solution file as its own module; its sibling imports (tbptt's rnn_layers) from its folder."""
    folder = os.path.dirname(path)
    saved = sys.modules.pop("rnn_layers", None)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(folder)
        sys.modules.pop("rnn_layers", None)
        if saved is not None:
            sys.modules["rnn_layers"] = saved


def _to_numpy(x):
    if torch.is_tensor(x):
        return x.numpy().copy()
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to_numpy(v) for v in x)
    return x


def _to_torch(x):
    if isinstance(x, (np.ndarray, np.generic)):
        return torch.from_numpy(np.array(x))
    if isinstance(x, float):
        return torch.tensor(x, dtype=torch.float64)
    if isinstance(x, dict):
        return {k: _to_torch(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to_torch(v) for v in x)
    return x


def _call(module, fn, inputs, forward=None):
    """fn's outputs by name, called as the grader's steps call it: a backward on its own track's forward's cache."""
    cache = None
    if fn.forward:
        fwd = forward
        out = getattr(module, fwd.name)(*call_args(fwd, inputs))
        cache = out[fwd.returns.index(CACHE)]
    out = getattr(module, fn.name)(*call_args(fn, inputs, cache))
    out = out if len(fn.returns) > 1 else (out,)
    return {r: v for r, v in zip(fn.returns, out) if r != CACHE}


def _flat(name, value):
    if isinstance(value, dict):
        return [("%s[%r]" % (name, k), v) for k, v in sorted(value.items())]
    return [(name, value)]


@pytest.mark.parametrize("fn", registry.FUNCTIONS, ids=[fn.name for fn in registry.FUNCTIONS])
def test_the_two_references_agree_on_every_public_case(fn):
    """The torch and NumPy references, on the public cases' own inputs (the release's), agree within the case's
    tolerance, keep the same dtypes and leave their inputs alone. Would catch: a NumPy reference that drifted."""
    torch_mod = _load(os.path.join(SOLUTIONS, fn.file + ".py"), "_torch_ref_" + fn.file)
    numpy_mod = _load(os.path.join(NP_SOLUTIONS, fn.file + ".py"), "_numpy_ref_" + fn.file)
    forward = registry.BY_NAME.get(fn.forward)
    public = [c for c in fn.cases if not c.hidden and c.device == "cpu"]
    assert public, fn.name
    for case in public:
        prep = plans.prepare(fn, case, 0, public_inputs="fixed")
        given = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in prep.inputs.items()}
        arrays = _to_numpy(given)
        want = _call(torch_mod, fn, given, forward)
        got = _call(numpy_mod, fn, arrays, forward)
        after = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
        assert plans.same_inputs(after, prep.inputs), (fn.name, case.name, "inputs modified")
        for name in want:
            for label, w in _flat(name, want[name]):
                g = dict(_flat(name, _to_torch(got[name])))[label]
                if isinstance(w, (list, tuple)):
                    w, g = torch.stack(list(w)), torch.stack([torch.as_tensor(v) for v in g])
                assert g.dtype == w.dtype and g.shape == w.shape, (fn.name, case.name, label, g.dtype, w.dtype)
                if w.is_floating_point():
                    err = compare.relative_error(g, w)[0]
                    assert err <= fn.tolerance(case), (fn.name, case.name, label, err)
                else:
                    assert torch.equal(g, w), (fn.name, case.name, label)


def _variant(tmp_path, file, edits):
    return make_variant(str(tmp_path / "sub"), file, edits, src=NP_SOLUTIONS)


def test_a_torch_operator_costs_the_function_its_points(np_plans, tmp_path):
    """A NumPy-track function that calls torch during its call gets 0 points, with the operator named; the other
    functions keep theirs. Would catch: an observer that only denies the torch track's layer list."""
    sub = _variant(tmp_path, "rnn_layers.py", [
        ("import numpy as np\n", "import numpy as np\nimport torch\n"),
        ("np.tanh(x @ Wx + prev_h @ Wh + b)", "torch.tanh(torch.from_numpy(x @ Wx + prev_h @ Wh + b)).numpy()")])
    report = runner.grade(sub, np_plans(["rnn_layers"]))
    got, best = scores(report), full(report)
    assert got["rnn_step_forward"] == 0, messages(report, "rnn_step_forward")
    assert "a torch operator in the NumPy track (torch." in messages(report, "rnn_step_forward")
    assert got["temporal_softmax_loss"] == best["temporal_softmax_loss"]


def test_an_autograd_library_costs_the_function_its_points(np_plans, tmp_path):
    """A file named like an autograd library, imported during a call, is recorded (the import hook), whatever
    it holds. Would catch: autograd libraries left to the name-based static scan."""
    sub = _variant(tmp_path, "rnn_layers.py", [
        ("def temporal_affine_forward(x, w, b):", "def temporal_affine_forward(x, w, b):\n    import autograd  # noqa")])
    with open(os.path.join(sub, "autograd.py"), "w") as f:
        f.write("grad = None\n")
    report = runner.grade(sub, np_plans(["rnn_layers"]))
    assert scores(report)["temporal_affine_forward"] == 0
    assert "autograd (a library that computes gradients" in messages(report, "temporal_affine_forward")
    assert scores(report)["rnn_step_forward"] == full(report)["rnn_step_forward"]


def test_a_cs231n_style_file_is_graded_as_it_is(np_plans, tmp_path):
    """CS231n's rnn_layers.py holds the LSTM too: with no lstm_layers.py, the LSTM's functions are found there,
    graded in full, and each says where it was found. Would catch: a missing file costing functions the
    student wrote elsewhere."""
    sub = tmp_path / "cs231n"
    sub.mkdir()
    with open(os.path.join(NP_SOLUTIONS, "rnn_layers.py")) as f:
        rnn = f.read()
    with open(os.path.join(NP_SOLUTIONS, "lstm_layers.py")) as f:
        lstm = f.read()
    (sub / "rnn_layers.py").write_text(rnn + "\n\n" + lstm[lstm.index("def sigmoid"):])
    report = runner.grade(str(sub), np_plans(["rnn_layers", "lstm_layers"]))
    assert scores(report) == full(report), {fr.fn.name: messages(report, fr.fn.name)[:300] for fr in report.functions}
    for fr in report.functions:
        if fr.fn.file == "lstm_layers":
            assert "%s was found in rnn_layers.py (the submission has no lstm_layers.py)" % fr.fn.name in fr.notes
        else:
            assert not fr.notes, fr.notes


def test_a_function_found_nowhere_still_says_its_file_is_missing(np_plans, tmp_path):
    sub = tmp_path / "only_rnn"
    sub.mkdir()
    shutil.copy(os.path.join(NP_SOLUTIONS, "rnn_layers.py"), sub)
    report = runner.grade(str(sub), np_plans(["lstm_layers"]))
    assert report.score == 0
    assert "lstm_layers.py was not found in the submission" in messages(report, "lstm_forward")


def test_overflow_warnings_reach_neither_the_output_nor_the_worker(np_plans, tmp_path):
    """A tanh written with np.exp overflows on the saturated float32 case: that check fails with the overflow
    hint in NumPy's words, no RuntimeWarning is printed into the student's output, and the worker keeps
    grading. Would catch: warnings printed once per line into the output, or torch's words in the hint."""
    sub = _variant(tmp_path, "rnn_layers.py", [(
        "next_h = np.tanh(x @ Wx + prev_h @ Wh + b)",
        "a = x @ Wx + prev_h @ Wh + b\n    next_h = (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))")])
    report = runner.grade(sub, np_plans(["rnn_layers"]))
    text = messages(report, "rnn_step_forward")
    assert scores(report)["rnn_step_forward"] < full(report)["rnn_step_forward"]
    assert "overflow" in text and "np.tanh" in text and "torch." not in text, text
    assert "RuntimeWarning" not in report.student_output and "overflow encountered" not in report.student_output
    assert scores(report)["temporal_softmax_loss"] == full(report)["temporal_softmax_loss"]


def test_a_torch_submission_on_the_numpy_track_is_told_what_it_returned(np_plans, tmp_path):
    """The torch reference graded on the NumPy track gets arrays, fails with its own error, and a note says
    that its file imports torch while the track is NumPy. Would catch: a wrong-track upload left unexplained."""
    report = runner.grade(copy_solutions(str(tmp_path / "torch_code")), np_plans(["rnn_layers"]))
    assert report.score < report.max_score
    assert any("rnn_layers.py imports torch (line " in n and "this course's track is NumPy" in n
               for n in report.notes), report.notes
    assert "must be Tensor, not numpy.ndarray" in messages(report, "rnn_step_forward")  # the student's own error


def test_cli_track_option_and_course_toml(tmp_path):
    """`grade --track numpy` and a course.toml saying track = "numpy" grade the NumPy reference in full; the
    table says the track."""
    toml = tmp_path / "course.toml"
    with open(os.path.join(ROOT, "course.toml")) as f:
        toml.write_text(f.read().replace('track = "torch"', 'track = "numpy"'))
    for extra in (["--track", "numpy"], ["--config", str(toml)]):
        r = subprocess.run([sys.executable, "-m", "autograder", "grade", NP_SOLUTIONS, "--files", "tbptt",
                            "--device", "cpu"] + extra, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "NumPy track: no CUDA checks" in r.stdout and "11/11" in r.stdout, r.stdout[-2000:]
