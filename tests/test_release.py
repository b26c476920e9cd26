"""The student release (dist/student.zip): what it holds, what it never holds, and its checker.

The zip is built once into a temporary folder. Its members must hold no solution (no
solutions/, no part file, no line of a fenced solution region), no trace of a hidden case (no
hidden case's name, no hidden case in the data); its checker, run as a student runs it
(`python check.py` in the unzipped folder, its own process), must fail every stub, pass the
reference solutions, and say exactly what the grader says about the public checks of buggy
variants.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from helpers import ASSIGNMENT, FIXED_SEED, ROOT, SOLUTIONS, copy_solutions, make_variant

import buggy.attention
import buggy.lstm_layers
import buggy.rnn_layers
import buggy.tbptt
from buggy.rnn_layers import BATCH_LOOP
from autograder import registry
from autograder.verbs import release
from autograder.engine import forbidden, runner, spec, speed
from autograder.engine.checker import report_dict

TOP = "rnn_assignment"
DATA = TOP + "/checker/public_checks.pt"
STUDENT_FILES = ["attention.py", "gradient_check.py", "lstm_layers.py", "rnn_layers.py", "tbptt.py"]
# Fenced lines the shipped engine legitimately holds too: a loop over time in compare.py's hints.
GENERIC = {"for t in range(T):"}
UNCHANGED = "inputs left unchanged"
# Buggy variants (tests/buggy/), in two submissions of one bug per student file: a model's hint,
# both custom detectors (repeated words, transposed weight gradient), dict outputs (tbptt), an
# input modified in place, a backward that reports its forward.
SUBMISSIONS = {
    "A": [(buggy.rnn_layers, "wrong tanh derivative (1 - h)"),
          (buggy.attention, "multihead attention backward: dWo transposed"),
          (buggy.tbptt, "tbptt: clipping each tensor by its own norm"),
          (buggy.lstm_layers, "lstm: in-place edit of dh")],
    "B": [(buggy.rnn_layers, "embedding gradient assigned instead of accumulated"),
          (buggy.attention, "dot attention: mask applied after the softmax"),
          (buggy.tbptt, "tbptt: state not carried between chunks (every chunk restarts from h0)"),
          (buggy.lstm_layers, "lstm: torch's gate order (i, f, g, o) instead of the lecture's (i, f, o, g)")],
}


FUNCTIONS, CFG = release.course()  # the registry as this course grades it (course.toml applied)


def _bug(module, name):
    return next(b for b in module.BUGS if b.name == name)


@pytest.fixture(scope="module")
def release_zip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("release") / "student.zip")
    release.build(path)
    return path


@pytest.fixture(scope="module")
def members(release_zip):
    with zipfile.ZipFile(release_zip) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture(scope="module")
def texts(members):
    out = {}
    for name, blob in members.items():
        try:
            out[name] = blob.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return out


@pytest.fixture(scope="module")
def course_plan():
    """The grader's plan for every function (hidden cases included), as `grade --device cpu` makes it,
    except for the public cases' inputs.

    The grader draws those at grading time (public_inputs="fresh", its default: no point is earned on
    inputs the release ships; tests/test_hostile_replay.py). Here they are the release's fixed ones on
    purpose: test_checker_says_what_the_grader_says compares the checker's messages, whose numbers
    (relative errors, positions) depend on the inputs, with the grader's.
    """
    return registry.plan(FUNCTIONS, device="cpu", seed=FIXED_SEED, public_inputs="fixed")


@pytest.fixture(scope="module")
def unzipped(release_zip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(release_zip) as zf:
        zf.extractall(str(folder))
    return os.path.join(str(folder), TOP)


def start_checker(folder, *args, submission=None, tmp=None):
    """Start check.py of the unzipped release as a student does (its own process); see finish."""
    out = os.path.join(str(tmp), "report.json")
    cmd = [sys.executable, "check.py", "--json", out] + list(args)
    if submission:
        cmd += ["--submission", submission]
    return subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def finish(started):
    """(return code, printed text, JSON report) of a checker run."""
    proc, out = started
    try:
        text, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode in (0, 1), text
    with open(out) as f:
        return proc.returncode, text, json.load(f)


def run_checker(folder, *args, submission=None, tmp=None):
    return finish(start_checker(folder, *args, submission=submission, tmp=tmp))


def public_view(report):
    """What a student sees of the public checks: {function: (forbidden, static, [(check, passed, message)])}.

    The vectorisation check measures differently on each side (the grader times the reference solution,
    which the release does not ship; the checker counts tensor operations): it is left out here, and
    test_a_batch_loop_fails_the_checker_with_the_graders_words compares it.
    """
    return {f["name"]: (f["forbidden"], f["static"],
                        [(c["name"], c["passed"], c["message"]) for c in f["checks"]
                         if not c["hidden"] and not c["name"].startswith(speed.NAME)])
            for f in report["functions"]}


# --------------------------------------------------------------------------- what it holds
def test_members(members):
    names = set(members)
    assert all(n.startswith(TOP + "/") for n in names)
    for f in STUDENT_FILES + ["README.md", "check.py", "checker/runner.py", "checker/public_checks.pt"]:
        assert "%s/%s" % (TOP, f) in names, f
    # The checker is autograder/engine/ as it is: every module, byte for byte, and nothing else of the kit.
    engine = os.path.join(ROOT, "autograder", "engine")
    shipped = {n[len(TOP + "/checker/"):] for n in names if n.startswith(TOP + "/checker/") and n.endswith(".py")}
    assert shipped == {f for f in os.listdir(engine) if f.endswith(".py")}
    for f in shipped:
        with open(os.path.join(engine, f), "rb") as src:
            assert members["%s/checker/%s" % (TOP, f)] == src.read(), f
    for f in STUDENT_FILES:  # the stubs, as generated
        with open(os.path.join(ASSIGNMENT, f), "rb") as src:
            assert members["%s/%s" % (TOP, f)] == src.read(), f
    readme = members[TOP + "/README.md"].decode()
    assert "python check.py" in readme and "hidden checks" in readme
    # what is forbidden: the table derived from engine/forbidden.py, up to date
    assert forbidden.MARK_BEGIN in readme and forbidden.fill(readme) == readme
    assert forbidden.markdown_table() in readme and "`torch.nn.LSTM`" in readme
    for f in registry.FILES:
        assert "`%s.py`" % f in readme


def test_no_solutions_and_no_part_files(members, texts):
    for name in members:
        parts = name.split("/")
        assert "solutions" not in parts and "parts" not in parts and "tests" not in parts, name
    for name, text in texts.items():
        if name.endswith(".py"):
            assert not re.search(r"from \.+parts|import parts|from autograder", text), name


def fenced_lines():
    """The solution lines of both tracks (a release ships one track's stubs, and neither track's solutions)."""
    lines = set()
    for name, folder in [(n, f) for f in (SOLUTIONS, os.path.join(ROOT, "solutions", "numpy"))
                         for n in sorted(os.listdir(f))]:
        if not name.endswith(".py"):
            continue
        inside = False
        with open(os.path.join(folder, name)) as f:
            for line in f:
                s = line.strip()
                if s == "# BEGIN SOLUTION":
                    inside = True
                elif s == "# END SOLUTION":
                    inside = False
                elif inside and len(s) > 12:
                    lines.add(s)
    return lines


def test_no_line_of_a_solution(texts):
    lines = fenced_lines() - GENERIC
    assert len(lines) > 100
    leaks = [(name, line) for name, text in texts.items() for line in lines if line in text]
    assert not leaks


def hidden_names():
    public = {c.name for fn in registry.FUNCTIONS for c in fn.cases if not c.hidden}
    return {c.name for fn in registry.FUNCTIONS for c in fn.cases if c.hidden} - public


def test_no_hidden_case_name(texts):
    hidden = hidden_names()
    assert len(hidden) > 20
    found = [(name, h) for name, text in texts.items() for h in hidden if h in text]
    assert not found


def test_data_holds_the_public_cases_only(members):
    data = torch.load(io.BytesIO(members[DATA]), weights_only=True)
    hidden = hidden_names()

    shipped = set(release._strings(data))
    assert not shipped & hidden
    # nor the options of the hidden cases (input names such as max_norm aside)
    opts = {fn.name: [{x for kv in c.opts for x in kv if isinstance(x, str)} for c in fn.cases]
            for fn in registry.FUNCTIONS}
    hidden_opts = set().union(*(o for fn in registry.FUNCTIONS for c, o in zip(fn.cases, opts[fn.name]) if c.hidden))
    public_opts = set().union(*(o for fn in registry.FUNCTIONS for c, o in zip(fn.cases, opts[fn.name]) if not c.hidden))
    input_names = {k for c in data["checks"] for k in c["inputs"]}
    assert len(hidden_opts - public_opts) > 5
    assert not (hidden_opts - public_opts - input_names) & shipped
    # every public case, the CUDA one included (the checker runs it where the student has a GPU)
    want = {fn.name: [c.name for c in fn.cases if not c.hidden] for fn in FUNCTIONS}
    assert all(any(c == spec.CUDA_SMALL for c in names) for names in want.values())
    assert [f["name"] for f in data["functions"]] == [fn.name for fn in FUNCTIONS]
    for f in data["functions"]:
        assert [c["name"] for c in f["cases"]] == want[f["name"]]
        assert not any(c["hidden"] for c in f["cases"])
    assert [f["points"] for f in data["functions"]] == [fn.points for fn in FUNCTIONS]
    # the checker refuses the same operators as the grader (log-softmax only where a loss is graded)
    assert [f["forbidden_ops"] for f in data["functions"]] == [fn.forbidden_ops for fn in FUNCTIONS]
    assert len(data["checks"]) == sum(len(v) for v in want.values())


# --------------------------------------------------------------------------- its checker
def test_checker_fails_every_stub(unzipped, tmp_path):
    rc, text, report = run_checker(unzipped, tmp=tmp_path)
    assert rc == 1
    assert report["score"] == 0
    assert [f["name"] for f in report["functions"]] == [fn.name for fn in FUNCTIONS]
    for f in report["functions"]:
        first = f["checks"][0]
        assert not first["passed"] and "not implemented yet" in first["message"], f
        assert not any(c["hidden"] for c in f["checks"])
    assert "first failing check" in text


def test_checker_passes_the_solutions(unzipped, tmp_path):
    folder = str(tmp_path / TOP)
    shutil.copytree(unzipped, folder)
    for name in os.listdir(SOLUTIONS):
        if name.endswith(".py"):
            shutil.copy(os.path.join(SOLUTIONS, name), folder)
    rc, text, report = run_checker(folder, tmp=tmp_path)
    assert rc == 0, text
    points = {fn.name: fn.points for fn in FUNCTIONS}
    for f in report["functions"]:
        assert all(c["passed"] for c in f["checks"]), f
        assert f["score"] == f["max_score"] == points[f["name"]]
    assert report["max_score"] == sum(points.values())


def test_checker_selects_files_and_functions(unzipped, tmp_path):
    _, _, report = run_checker(unzipped, "tbptt", "rnn_forward", tmp=tmp_path)
    want = [fn.name for fn in FUNCTIONS if fn.file == "tbptt" or fn.name == "rnn_forward"]
    assert [f["name"] for f in report["functions"]] == want
    bad = subprocess.run([sys.executable, "check.py", "no_such_thing"], cwd=unzipped, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "no_such_thing" in bad.stderr


def combined_variant(dst, bugs, tmp):
    """The solutions with each bug's edits applied to its own file (at most one bug a file)."""
    copy_solutions(dst)
    for k, bug in enumerate(bugs):
        one = make_variant(os.path.join(str(tmp), "one%d" % k), bug.file, bug.edits)
        shutil.copy(os.path.join(one, bug.file), dst)
    return dst


@pytest.mark.parametrize("group", sorted(SUBMISSIONS))
def test_checker_says_what_the_grader_says(group, unzipped, course_plan, tmp_path):
    """Public checks: the same verdicts and messages as the grader's, hidden checks aside.

    "inputs left unchanged" sums up every call, hidden ones included ("not credited" when no
    other check passed), so it may fail here and pass on Gradescope; never the other way round.
    """
    bugs = [_bug(module, name) for module, name in SUBMISSIONS[group]]
    assert len({b.file for b in bugs}) == len(bugs)
    sub = combined_variant(str(tmp_path / "sub"), bugs, tmp_path)
    started = start_checker(unzipped, submission=sub, tmp=tmp_path)  # runs while the grader grades
    grader = public_view(report_dict(runner.grade(sub, course_plan, CFG.limits(), CFG.budget_seconds())))
    local = public_view(finish(started)[2])
    assert list(local) == list(grader)
    for fn in grader:
        (lf, ls, lchecks), (gf, gs, gchecks) = local[fn], grader[fn]
        assert (lf, ls) == (gf, gs), fn
        assert [c for c in lchecks if c[0] != UNCHANGED] == [c for c in gchecks if c[0] != UNCHANGED], fn
        lu, gu = lchecks[-1], gchecks[-1]
        assert lu[0] == gu[0] == UNCHANGED
        if not gu[1]:
            assert lu == gu, fn
    for bug in bugs:  # each variant fails a public check of the function it breaks, with its hint
        checks = local[bug.breaks[0]][2]
        assert not all(passed for _, passed, _ in checks), bug.name
        if bug.hint:
            assert any(bug.hint in message for _, _, message in checks), bug.name


def _speed_checks(report):
    return {f["name"]: next(c for c in f["checks"] if c["name"].startswith(speed.NAME))
            for f in report["functions"] if any(c["name"].startswith(speed.NAME) for c in f["checks"])}


def test_a_batch_loop_fails_the_checker_with_the_graders_words(unzipped, course_plan, tmp_path):
    """The rule that costs points on Gradescope is seen before the deadline: the same check, of the same
    name and weight, fails in check.py for a loop over the batch, with the grader's words (the measure
    aside: the grader times the calls, the checker counts their tensor operations), and passes for
    everything else. Would catch: a checker that skips the check, or that fails the solutions' calls."""
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, BATCH_LOOP.edits)
    started = start_checker(unzipped, "rnn_layers", submission=sub, tmp=tmp_path)
    plan = registry.plan([fn for fn in FUNCTIONS if fn.file == "rnn_layers"], device="cpu", seed=FIXED_SEED)
    grader = _speed_checks(report_dict(runner.grade(sub, plan, CFG.limits(), CFG.budget_seconds())))
    local = _speed_checks(finish(started)[2])
    assert list(local) == list(grader) == [fn.name for fn in FUNCTIONS if fn.file == "rnn_layers" and fn.speed]
    for name in local:
        mine, theirs = local[name], grader[name]
        assert (mine["name"], mine["weight"]) == (theirs["name"], theirs["weight"])
        broken = name in BATCH_LOOP.breaks
        assert mine["passed"] == theirs["passed"] == (not broken), (name, mine, theirs)
        if broken:
            words = "%s is " % name, "x slower than the reference solution on this check's input", speed.ADVICE
            for message in (mine["message"], theirs["message"]):
                assert message.startswith(words[0]) and words[1] in message and message.endswith(words[2]), message
            assert "counted in tensor operations" in mine["message"]


TIME_LOOP = ("    out = x @ w + b  # (N, T, M)\n",
             "    out = x.new_empty((x.shape[0], x.shape[1], w.shape[1]))\n"
             "    for t in range(x.shape[1]):  # a loop over time, which the assignment allows\n"
             "        out[:, t] = x[:, t] @ w + b\n")


def test_a_loop_over_time_passes_the_checkers_count(unzipped, tmp_path):
    """The loop the assignment allows passes: the reference's temporal_affine_forward makes 2 tensor operations
    (counted as speed.OPS_FLOOR), a loop over its 4 time steps 17. Would catch: an allowance that a loop
    over time exceeds."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [TIME_LOOP])
    _, _, report = run_checker(unzipped, "temporal_affine_forward", submission=sub, tmp=tmp_path)
    (f,) = report["functions"]
    assert all(c["passed"] for c in f["checks"]), f


# --------------------------------------------------------------------------- the NumPy track
NP_BATCH_LOOP = ("        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)\n",
                 "        next_h = np.empty((N, H), dtype=x.dtype)\n"
                 "        for n in range(N):  # one example at a time\n"
                 "            next_h[n] = np.tanh(x[n, t] @ Wx + prev_h[n] @ Wh + b)\n"
                 "        prev_h, step_cache = next_h, (x[:, t], prev_h, Wx, Wh, next_h)  # (N, H)\n")
NP_TIME_LOOP = ("    out = x @ w + b  # (N, T, M)\n",
                "    out = np.empty((x.shape[0], x.shape[1], w.shape[1]), dtype=x.dtype)\n"
                "    for t in range(x.shape[1]):  # a loop over time, which the assignment allows\n"
                "        out[:, t] = x[:, t] @ w + b\n")


@pytest.fixture(scope="module")
def np_release(tmp_path_factory):
    """The release of a course.toml saying track = "numpy", unzipped: (folder, its members)."""
    top = tmp_path_factory.mktemp("np_release")
    toml = top / "course.toml"
    with open(os.path.join(ROOT, "course.toml")) as f:
        toml.write_text(f.read().replace('track = "torch"', 'track = "numpy"'))
    path = str(top / "student.zip")
    release.build(path, config_path=str(toml))
    with zipfile.ZipFile(path) as zf:
        zf.extractall(str(top / "unzipped"))
        members = {name: zf.read(name) for name in zf.namelist()}
    return os.path.join(str(top / "unzipped"), TOP), members


def test_numpy_release_ships_the_numpy_stubs_and_says_so(np_release):
    from helpers import NP_ASSIGNMENT

    _, members = np_release
    for name in STUDENT_FILES:
        with open(os.path.join(NP_ASSIGNMENT, name), "rb") as f:
            assert members["%s/%s" % (TOP, name)] == f.read(), name
    readme = members[TOP + "/README.md"].decode()
    assert "in NumPy (arrays in, arrays out" in readme and "in PyTorch tensor operations" not in readme
    assert forbidden.numpy_table() in readme and "`torch.nn.LSTM`" not in readme
    assert "CUDA" not in readme  # no CUDA check on this track
    assert b'"numpy"' in members[DATA] or b"numpy" in members[DATA]


def test_numpy_checker_passes_the_numpy_reference_and_fails_its_stubs(np_release, tmp_path):
    from helpers import NP_SOLUTIONS

    unzipped, _ = np_release
    rc, text, report = run_checker(unzipped, tmp=tmp_path)
    assert rc == 1 and report["score"] == 0
    assert all("not implemented yet" in f["checks"][0]["message"] for f in report["functions"])
    folder = str(tmp_path / TOP)
    shutil.copytree(unzipped, folder)
    for name in os.listdir(NP_SOLUTIONS):
        shutil.copy(os.path.join(NP_SOLUTIONS, name), folder)
    rc, text, report = run_checker(folder, tmp=tmp_path)
    assert rc == 0, text
    assert report["score"] == report["max_score"] == sum(fn.points for fn in FUNCTIONS)
    assert "NumPy track: no CUDA checks" in text


def test_numpy_checker_counts_lines_and_fails_a_batch_loop_as_the_grader_does(np_release, tmp_path):
    """In the NumPy track, whose operators no observer sees, check.py counts the lines of the student's Python
    that run: a loop over the batch fails the vectorisation check there and on the grader (timed), with the
    same name and advice in NumPy's words; a loop over time passes. Would catch: a count that is always zero
    (a check that cannot fail), or torch's words."""
    from helpers import NP_SOLUTIONS

    unzipped, _ = np_release
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [NP_BATCH_LOOP], src=NP_SOLUTIONS)
    started = start_checker(unzipped, "rnn_forward", submission=sub, tmp=tmp_path)
    plan = registry.plan([registry.BY_NAME["rnn_forward"]], device="cpu", seed=FIXED_SEED, track="numpy")
    grader = _speed_checks(report_dict(runner.grade(sub, plan, CFG.limits(), CFG.budget_seconds())))
    local = _speed_checks(finish(started)[2])
    mine, theirs = local["rnn_forward"], grader["rnn_forward"]
    assert not mine["passed"] and not theirs["passed"], (mine, theirs)
    for message in (mine["message"], theirs["message"]):
        assert message.startswith("rnn_forward is ") and "as array operations" in message, message
        assert "tensor" not in message, message
    assert "counted in lines of Python run" in mine["message"]
    sub = make_variant(str(tmp_path / "time"), "rnn_layers.py", [NP_TIME_LOOP], src=NP_SOLUTIONS)
    _, _, report = run_checker(unzipped, "temporal_affine_forward", submission=sub, tmp=tmp_path)
    (f,) = report["functions"]
    assert all(c["passed"] for c in f["checks"]), f
