"""Hostile submissions that shadow a module of the grader, or forge what the worker reports (issue 18, item 1).

The student's scratch folder is first on the worker's sys.path, so a file named like a module the
worker-side code imports (gradescope_utils.py, json.py, autograder.py) would replace that module:
such files are refused, never copied, and the student is told. And whatever the worker reports
about an instructor test, its weight, visibility and very existence come from the grader's own
reading of the test file: the maximum is always the registry's plus that reading's total.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from helpers import ASSIGNMENT, ROOT, copy_solutions, write_submission

from autograder.verbs import instructor

from autograder import registry

from autograder.engine import submission

pytest.importorskip("gradescope_utils", reason="pinned in requirements/grader.txt: make setup installs it")

# A fake gradescope_utils: it registers its own decorator modules, whose @weight and @partial_credit
# claim 1000 points and replace the test by one that always passes.
FAKE_GRADESCOPE_UTILS = '''
import sys, types


def _passing(fn, **claims):
    def test(self, *args, **kwargs):
        return None
    test.__name__, test.__doc__ = fn.__name__, fn.__doc__
    for k, v in claims.items():
        setattr(test, k, v)
    return test


def weight(val):
    return lambda fn: _passing(fn, __weight__=1000)


def partial_credit(val):
    return lambda fn: _passing(fn, __weight__=1000, __score__=1000)


def _same(*args, **kwargs):
    return lambda fn: fn


__path__ = []
autograder_utils = types.ModuleType(__name__ + ".autograder_utils")
autograder_utils.__path__ = []
decorators = types.ModuleType(__name__ + ".autograder_utils.decorators")
decorators.__dict__.update(weight=weight, partial_credit=partial_credit, number=_same, tags=_same,
                           visibility=_same, hide_errors=_same, leaderboard=_same)
autograder_utils.decorators = decorators
sys.modules[autograder_utils.__name__] = autograder_utils
sys.modules[decorators.__name__] = decorators
'''


def stubs(dst):
    """A submission folder holding the assignment's stubs."""
    return copy_solutions(dst, ASSIGNMENT)


def static_total(folder=None):
    """The points of the instructor tests, as their files' text shows them."""
    total = 0.0
    for path in instructor.find_files(folder):
        with open(path, encoding="utf-8") as f:
            total += sum(m.get("weight") or 0 for m in instructor.static_tests(f.read(), instructor._module(path)))
    return total


def grade_cli(sub, out):
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        return json.load(f), r.stdout


# --------------------------------------------------------------------------- (a) the attack, end to end
def test_a_fake_gradescope_utils_earns_nothing_and_is_named(tmp_path):
    legit, _ = grade_cli(stubs(str(tmp_path / "stubs")), str(tmp_path / "stubs.json"))
    sub = stubs(str(tmp_path / "attack"))
    write_submission(sub, {"gradescope_utils.py": FAKE_GRADESCOPE_UTILS})
    data, stdout = grade_cli(sub, str(tmp_path / "attack.json"))

    most = sum(fn.points for fn in registry.FUNCTIONS) + static_total()  # 82 + 5 = 87 for the kit today
    assert sum(t.get("max_score", 0) for t in data["tests"]) == most
    assert all(t.get("score", 0) <= t.get("max_score", 0) for t in data["tests"])
    assert data["score"] <= legit["score"]  # the stubs earn what they earn, not 2000 more
    mine = [t for t in data["tests"] if "instructor_test" in t.get("extra_data", {}) and "max_score" in t
            and t["max_score"] > 0]
    assert mine and all(t["score"] == 0 and t["max_score"] < 1000 for t in mine)
    for text in (data["output"], stdout):
        assert "gradescope_utils.py has the name of the module gradescope_utils" in text
        assert "rename it" in text


# --------------------------------------------------------------------------- (b) which files are refused
def test_b_files_named_like_importable_modules_are_refused(tmp_path):
    sub = stubs(str(tmp_path / "sub"))
    shadows = {"json": "standard library", "unittest": "standard library", "torch": "installed package",
               "gradescope_utils": "installed package", "autograder": "the grader's own code"}
    if importlib.util.find_spec("numpy") is not None:
        shadows["numpy"] = "installed package"
    write_submission(sub, {m + ".py": "raise SystemExit('shadowed %s')\n" % m for m in shadows})
    write_submission(sub, {"my_helpers.py": "HELP = 1\n"})
    statuses = submission.locate(sub, ["tbptt"])  # rnn_layers.py is a graded file even when not graded now
    scratch = submission.make_scratch(statuses)
    try:
        copied = set(os.listdir(scratch))
    finally:
        shutil.rmtree(scratch)
    assert copied == {n for n in os.listdir(ASSIGNMENT) if n.endswith(".py")} | {"my_helpers.py"}
    refused = submission.shadowing(statuses)
    assert set(refused) == {m + ".py" for m in shadows}
    for module, kind in shadows.items():
        assert refused[module + ".py"].startswith("%s.py has the name of the module %s (%s)" % (module, module, kind))
    assert not {"rnn_layers.py", "tbptt.py", "my_helpers.py"} & set(refused)


def test_b_graded_file_names_are_never_refused(tmp_path):
    sub = stubs(str(tmp_path / "sub"))
    statuses = submission.locate(sub, registry.FILES)
    assert submission.shadowing(statuses) == {}
    assert not set(registry.FILES) & set(submission.importable_modules())


# --------------------------------------------------------------------------- (c) forged reports
SOURCE = '''
import unittest
from gradescope_utils.autograder_utils.decorators import partial_credit, visibility, weight


class T(unittest.TestCase):
    @weight(1)
    def test_a(self):
        """A"""

    @partial_credit(2)
    @visibility("hidden")
    def test_b(self, set_score=None):
        set_score(2)

    @weight(3)
    def test_c(self):
        """C (the worker says it was skipped)"""
'''


class _FakeWorker:
    """Sends scripted frames back, whatever it is asked."""

    alive = True
    next_id = 1

    def __init__(self, frames):
        self.frames = iter(frames)

    def request(self, req, timeout, what):
        return next(self.frames)

    def _receive(self, rid, deadline, what, timeout):
        return next(self.frames)


class _FakeSession:
    def __init__(self, frames):
        self.worker = _FakeWorker(frames)

    def restart(self):
        pass

    def lost(self):
        pass

    def strays(self):
        return False


def _forged_frames(module):
    ids = [module + ".T.test_a", module + ".T.test_b", module + ".T.test_c", module + ".T.test_ghost"]
    metas = [{"id": i, "name": i, "weight": 1000.0, "visibility": "visible", "number": "1"} for i in ids]
    frames = [{"event": "tests", "tests": metas}]
    for i in ids:
        status = "skipped" if i.endswith("test_c") else "passed"
        frames += [{"event": "start", "test": i},
                   {"event": "result", "test": i, "status": status, "messages": [], "subtests_failed": 0,
                    "score": 1000.0, "output": ""}]
    return frames + [{"event": "done"}]


def test_c_forged_weights_scores_and_tests_count_as_the_file_says(tmp_path):
    path = str(tmp_path / "test_forged.py")
    with open(path, "w") as f:
        f.write(SOURCE)
    rep = instructor.InstructorReport(files=["test_forged.py"])
    instructor.run_file(_FakeSession(_forged_frames("test_forged")), path, SOURCE, 10.0, rep)
    counted = {t["extra_data"]["id"].split(".")[-1]: t for t in rep.tests if t.get("max_score")}
    assert {k: (t["score"], t["max_score"]) for k, t in counted.items()} == {
        "test_a": (1.0, 1.0), "test_b": (2.0, 2.0), "test_c": (0.0, 3.0)}
    assert counted["test_b"]["visibility"] == "hidden" and "number" not in counted["test_b"]
    assert rep.max_score == 6.0 and rep.score == 3.0  # the text's total, whatever the worker said
    assert not any("test_ghost" in t["extra_data"].get("id", "") for t in rep.tests)
    note = [t for t in rep.tests if t["visibility"] == "hidden" and t.get("max_score") == 0.0]
    assert note and "test_ghost" in note[0]["output"]


def test_c_weights_changed_while_the_file_runs_do_not_count(tmp_path):
    folder = tmp_path / "it"
    folder.mkdir()
    (folder / "test_runtime.py").write_text(textwrap.dedent(SOURCE) + textwrap.dedent('''
        T.test_a.__weight__ = 1000            # what the worker reads differs from the text
        T.test_b.__wrapped__.__weight__ = 1000
        T.test_b.__weight__ = 1000
        T.test_ghost = weight(50)(lambda self: None)
        '''))
    rep = instructor.run(copy_solutions(str(tmp_path / "sub")), folder=str(folder), timeout=30.0)
    by_test = {t["extra_data"]["id"].split(".")[-1]: t for t in rep.tests if "id" in t["extra_data"]}
    assert {k: (t["score"], t["max_score"]) for k, t in by_test.items()} == {
        "test_a": (1.0, 1.0), "test_b": (2.0, 2.0), "test_c": (3.0, 3.0)}
    assert rep.max_score == static_total(str(folder)) == 6.0
