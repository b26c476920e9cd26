"""Hostile attacks on the restructured layout: the engine (autograder/engine/) that knows no kit, the plan
that names the kit whose secrets its workers may not see (plans.Plan.kit), the verbs around them, and the
student release that ships the engine as it is (checker/).

1. Every road a grading takes (`python -m autograder grade`, with and without the zygote; the vectorisation
   check's requests; the instructor tests; `grade-batch`; two gradings at once in one process) hides the
   kit's secret folders (sandbox.KIT_SECRETS) from the student's code, at import and during a call. These
   run on a fresh copy of the kit whose folders are still open to others (the kit in this checkout has
   long been closed by earlier gradings as root, which would hide a forgotten kit by accident), and each
   proves it could have failed: a control file of that copy, outside the secrets, must be readable from
   the same worker, and the same attack on a copy whose code forgets its kit must leak. As root the lease's
   chmod hides the kit by itself; the in-process tests also run with it taken away ("cover alone"), so that
   each worker's own mount-namespace cover (all there is without root) is what they test.
2. No caller in the kit builds a plan, session, worker or lease without a kit (a kit of None hides nothing).
3. The student release: its checker/ is the whole engine, audited; it neither reads nor imports the kit; a
   student's files named like engine modules change nothing; its zygote starts from the `checker` package.
4. What the restructure made process-wide: speed's cache of reference modules, config.apply's copies, the
   operator observer the reference runs under (grade-batch grades in threads).
5. What a student's output and messages can do to results.json and to the grader's own reports.

Holes this found, each fixed and kept as a test: a lone surrogate in a student's message (grade wrote no
results.json; grade-batch's class report stopped: wire.decode now cleans every string), a secret folder
that is a symbolic link (its target is covered and closed too), the checker and the grader refusing
different file names (both refuse both package names), a solution line in tools/bench.py (tools/ is
one of the kit's secret folders).

Scratch files live under /root/work (workers get a private /tmp, so a kit copied there would be hidden
from them whatever the grader does, and these tests would prove nothing).
"""
import ast
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest
import torch
from helpers import ASSIGNMENT, FIXED_SEED, ROOT, SOLUTIONS, write_submission

from autograder import config, paths, registry
from autograder.engine import runner, sandbox, speed
from autograder.engine.sandbox import KIT_SECRETS, Limits

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox uid, a kit copy others can reach)")
SCRATCH_BASE = "/root/work"
ANCHOR = "    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n"
EMBED_FUNCTIONS = "word_embedding_forward,word_embedding_backward"


def _scratch_top(prefix):
    """A folder the sandbox uid can reach (traverse and read), outside every private tmpfs of a worker."""
    base = SCRATCH_BASE if os.geteuid() == 0 else None
    if base:
        os.makedirs(base, exist_ok=True)
    top = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(top, 0o755)
    return top


def _open_to_others(top):
    """Every folder 0755 and file 0644 under top: as a fresh clone is, before any grading closes it."""
    for folder, dirs, files in os.walk(top):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


# --------------------------------------------------------------------------- kits to hide
def _fake_secrets(kit):
    """One file in each secret folder (KIT_SECRETS) of `kit` that a real kit does not already hold, and the
    control: assignment/rnn_layers.py, outside the secrets, which the worker must be able to read."""
    made = {
        "solutions": os.path.join("numpy", "rnn_layers.py"), "autograder": os.path.join("parts", "rnn_layers.py"),
        "tests": "helpers.py", ".git": "HEAD", "dist": "autograder.zip", "handouts": "master.ipynb",
        "instructor_tests": "notes.txt",  # not test*.py: the grader would run it
        "tools": "bench.py",
    }
    assert set(made) == set(KIT_SECRETS), "KIT_SECRETS changed: say which file of each folder to try"
    files = []
    for folder, name in made.items():
        path = os.path.join(kit, folder, name)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("secret of %s\n" % folder)
        files.append(path)
    os.makedirs(os.path.join(kit, "assignment"), exist_ok=True)
    control = os.path.join(kit, "assignment", "rnn_layers.py")
    shutil.copy(os.path.join(ASSIGNMENT, "rnn_layers.py"), control)
    return files, [os.path.join(kit, d) for d in KIT_SECRETS], control


def _real_kit_copy(top):
    """A copy of the kit (its code, solutions, course.toml) at top/kit, open to others as a fresh clone is."""
    kit = os.path.join(top, "kit")
    for name in ("autograder", "solutions"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(kit, name), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "course.toml"), kit)
    os.makedirs(os.path.join(kit, "instructor_tests"))
    return kit


# --------------------------------------------------------------------------- the hostile student
SNOOP = '''
import os as _os, sys as _sys
_SECRET_FILES = %(files)r
_SECRET_DIRS = %(dirs)r
_CONTROL = %(control)r
_KIT_MODULES = ("autograder.parts", "autograder.registry", "autograder.verbs", "autograder.paths",
                "autograder.config", "_reference_", "solutions")


def _snoop(where):
    """Every secret this process can read, list or find already loaded (nothing, when the kit is hidden)."""
    got = []
    for p in _SECRET_FILES:
        try:
            with open(p, "rb") as f:
                f.read(16)
            got.append("%%s read %%s" %% (where, p))
        except OSError:
            pass
    for d in _SECRET_DIRS:
        try:
            names = _os.listdir(d)
        except OSError:
            continue
        if names:
            got.append("%%s listed %%s: %%s" %% (where, d, sorted(names)[:4]))
    loaded = [m for m in list(_sys.modules) if m.startswith(_KIT_MODULES)]
    if loaded:
        got.append("%%s found the kit's modules loaded: %%s" %% (where, loaded[:5]))
    return got


def _control():
    try:
        with open(_CONTROL, "rb") as f:
            return bool(f.read(16))
    except OSError:
        return False


_LEAKS = _snoop("at import")
_CONTROL_AT_IMPORT = _control()
_SEEN = {"calls": 0, "large": False}


def _verdict(x):
    """Raise what leaked (LEAKED: ...), or that the control could not be read (the test would prove nothing)."""
    _SEEN["calls"] += 1
    leaks = list(_LEAKS)
    if _SEEN["calls"] == 1:
        leaks += _snoop("during the first call")
        if not (_CONTROL_AT_IMPORT and _control()):
            raise RuntimeError("CONTROL-UNREADABLE: %%s" %% _CONTROL)
    if x.numel() >= 256 and not _SEEN["large"]:  # the vectorisation check's input (N=128, T=4), never a case's
        _SEEN["large"] = True
        leaks += _snoop("during the vectorisation check's request")
    if leaks:
        raise RuntimeError("LEAKED: " + "; ".join(leaks))
'''

INSTRUCTOR_TEST = '''
import unittest

from gradescope_utils.autograder_utils.decorators import weight


class TestKitSecrets(unittest.TestCase):
    @weight(1)
    def test_kit_secrets_from_the_instructor_tests(self):
        """kit secrets, from the instructor tests' worker"""
        import rnn_layers  # the student's file, with its snoop

        leaks = rnn_layers._LEAKS + rnn_layers._snoop("in an instructor test")
        self.assertEqual(leaks, [], "LEAKED: %s" % leaks)
        self.assertTrue(rnn_layers._CONTROL_AT_IMPORT and rnn_layers._control(), "CONTROL-UNREADABLE")
'''


def snooping_submission(dst, files, dirs, control):
    """The solutions' rnn_layers.py whose word_embedding_forward raises LEAKED: ... when any secret leaked."""
    with open(os.path.join(SOLUTIONS, "rnn_layers.py")) as f:
        text = f.read()
    head = "import torch\n"
    assert text.count(head) == 1 and text.count(ANCHOR) == 1
    text = text.replace(head, head + SNOOP % {"files": files, "dirs": dirs, "control": control})
    text = text.replace(ANCHOR, "    # BEGIN SOLUTION\n    _verdict(x)\n" + ANCHOR.split("\n", 1)[1])
    return write_submission(dst, {"rnn_layers.py": text})


def _entry(data, name):
    return next(t for t in data["tests"] if t.get("tags", [None])[0] == name and "hidden-details" not in t["tags"])


def assert_nothing_leaked(data, instructor=False):
    """results.json of a snooping submission: no LEAKED, no unreadable control; the function ran fully."""
    text = json.dumps(data)
    assert "LEAKED" not in text, [t.get("output") for t in data["tests"] if "LEAKED" in json.dumps(t)]
    assert "CONTROL-UNREADABLE" not in text, "the worker could not read the kit copy at all: this proves nothing"
    fwd = _entry(data, "word_embedding_forward")
    assert fwd["score"] == fwd["max_score"], fwd["output"]
    # the vectorisation check sent its request (the snoop ran on its input) and passed
    assert "PASS `vectorised" in fwd["output"], fwd["output"]
    if instructor:
        mine = [t for t in data["tests"] if t.get("extra_data", {}).get("instructor_test") == "test_snoop.py"]
        assert len(mine) == 1 and mine[0]["score"] == 1.0, mine


def _snooping_kit(top):
    """(kit, secret files, secret dirs, control): a real kit copied under top, with an instructor test that
    snoops and a file in each secret folder."""
    kit = _real_kit_copy(top)
    with open(os.path.join(kit, "instructor_tests", "test_snoop.py"), "w") as f:
        f.write(INSTRUCTOR_TEST)
    files, dirs, control = _fake_secrets(kit)
    return kit, files, dirs, control


@pytest.fixture(scope="module")
def kit_copy():
    """(top, kit, secret files, secret dirs, control): a copy of the kit that `python -m autograder` runs from
    (cwd), with an instructor test of its own, all of it open to others as a fresh clone is."""
    top = _scratch_top("ag-hostile-layout-")
    try:
        kit, files, dirs, control = _snooping_kit(top)
        files.append(os.path.join(kit, "instructor_tests", "test_snoop.py"))
        files.append(os.path.join(kit, "autograder", "registry.py"))
        files.append(os.path.join(kit, "solutions", "torch", "lstm_layers.py"))
        _open_to_others(top)
        # the copy's own code runs (its paths.KIT_ROOT is the copy), not this checkout's
        r = subprocess.run([sys.executable, "-c", "from autograder import paths; print(paths.KIT_ROOT)"],
                           cwd=kit, env=_env(kit), capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == kit, r.stdout + r.stderr
        yield top, kit, files, dirs, control
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _env(kit):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_") and k != "PYTHONIOENCODING"}
    env["PYTHONPATH"] = kit
    return env


def _cli(kit, *argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "autograder", *argv], cwd=kit, env=_env(kit),
                          capture_output=True, text=True, timeout=timeout)


@root_only
@pytest.mark.parametrize("zygote", [True, False], ids=["forked workers", "fresh workers"])
def test_grade_cli_hides_the_kit_from_the_student_at_import_in_calls_and_in_the_speed_check(kit_copy, zygote):
    """End to end, as Gradescope grades (root). Would catch: `grade`'s plan without the kit (registry.plan):
    no lease closes it and no worker covers it, and the student's code reads the copy's solutions/ and
    parts/. (As root the lease's chmod alone already hides the kit; the in-process tests below take it away
    to check the workers' own covers.)"""
    top, kit, files, dirs, control = kit_copy
    sub = snooping_submission(tempfile.mkdtemp(dir=top), files, dirs, control)
    out = os.path.join(tempfile.mkdtemp(dir=top), "results.json")
    r = _cli(kit, "grade", sub, "-o", out, "--device", "cpu", "--functions", EMBED_FUNCTIONS,
             *([] if zygote else ["--no-forkserver"]))
    assert r.returncode == 0, r.stderr[-3000:]
    assert_nothing_leaked(json.load(open(out)))


INSTRUCTOR_ONLY = """
import json, sys
from autograder.verbs import instructor

rep = instructor.run(sys.argv[1], folder=sys.argv[2], timeout=120)
print("RESULT " + json.dumps(rep.tests))
"""


def _instructor_tests_alone(kit, sub):
    """The copy's instructor tests run by themselves (in `grade` the registry's grading runs first, and as root
    its lease has already closed the kit's folders to others: that would hide a forgotten kit here)."""
    r = subprocess.run([sys.executable, "-c", INSTRUCTOR_ONLY, sub, os.path.join(kit, "instructor_tests")],
                       cwd=kit, env=_env(kit), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    tests = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])
    mine = [t for t in tests if t.get("extra_data", {}).get("instructor_test") == "test_snoop.py"]
    assert len(mine) == 1, tests
    return mine[0]


@root_only
def test_instructor_tests_hide_the_kit_from_the_student(kit_copy):
    """Would catch: instructor.run leasing or starting its Session without paths.KIT_ROOT (its own Session,
    not the plan's): the student's module, imported by an instructor test, reads the kit's secrets."""
    top, kit, files, dirs, control = kit_copy
    sub = snooping_submission(tempfile.mkdtemp(dir=top), files, dirs, control)
    entry = _instructor_tests_alone(kit, sub)
    assert entry["score"] == 1.0, entry


@root_only
def test_grade_with_instructor_tests_hides_the_kit_on_both_roads(kit_copy):
    top, kit, files, dirs, control = kit_copy
    sub = snooping_submission(tempfile.mkdtemp(dir=top), files, dirs, control)
    out = os.path.join(tempfile.mkdtemp(dir=top), "results.json")
    r = _cli(kit, "grade", sub, "-o", out, "--device", "cpu", "--functions", EMBED_FUNCTIONS,
             "--instructor-tests", os.path.join(kit, "instructor_tests"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert_nothing_leaked(json.load(open(out)), instructor=True)


@root_only
def test_grade_batch_hides_the_kit_from_every_student(kit_copy):
    """Would catch: grade-batch's plan (verbs/batch/run.py) or its zygote's workers without the kit."""
    top, kit, files, dirs, control = kit_copy
    klass = tempfile.mkdtemp(dir=top)
    snooping_submission(os.path.join(klass, "eve"), files, dirs, control)
    snooping_submission(os.path.join(klass, "mallory"), files, dirs, control)
    outdir = os.path.join(tempfile.mkdtemp(dir=top), "out")
    r = _cli(kit, "grade-batch", klass, "-o", outdir, "--device", "cpu", "--functions", EMBED_FUNCTIONS, "-j", "2",
             "--instructor-tests", os.path.join(kit, "instructor_tests"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    for student in ("eve", "mallory"):
        assert_nothing_leaked(json.load(open(os.path.join(outdir, "results", student, "results.json"))),
                              instructor=True)


@root_only
def test_two_grade_commands_at_once_on_one_kit_both_hide_it_and_both_finish(kit_copy):
    """Two `python -m autograder grade` on the same kit at the same time (two Gradescope containers never
    share a kit, an instructor's shell does). Would catch: one grading's lease, zygote or scratch getting in the
    way of the other's, or the kit left open to one of them while the other sets it up."""
    top, kit, files, dirs, control = kit_copy
    runs = []
    for i in range(2):
        sub = snooping_submission(tempfile.mkdtemp(dir=top), files, dirs, control)
        out = os.path.join(tempfile.mkdtemp(dir=top), "results.json")
        proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu",
                                 "--functions", EMBED_FUNCTIONS], cwd=kit, env=_env(kit),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((proc, out))
    for proc, out in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert_nothing_leaked(json.load(open(out)))


# --------------------------------------------------------------------------- in process: the covers alone
# As root, sandbox.lease closes the kit's secret folders to others (hide_from_sandbox, a chmod that stays):
# that alone hides a kit whose worker forgot it, in this and every later grading of the kit. Without root
# (a cluster job) the worker's mount-namespace covers (sandbox.private_paths) are all there is. "cover alone"
# takes the chmod away in this process, so that what is tested is the cover each worker gets.
HIDING = ["chmod and cover", "cover alone"]


@pytest.fixture(params=HIDING)
def hiding(request, monkeypatch):
    if request.param == "cover alone":
        monkeypatch.setattr(sandbox, "hide_from_sandbox", lambda *a, **k: None)
    return request.param


@pytest.fixture
def fake_kits():
    """make(n): n kits of secret folders (KIT_SECRETS, each with a file) and a control file, open to others
    in a folder the sandbox uid reaches; [(kit, files, dirs, control)]."""
    top = _scratch_top("ag-fake-kits-")

    def make(n):
        kits = []
        for i in range(n):
            kit = os.path.join(top, "kit%d" % i)
            kits.append((kit,) + tuple(_fake_secrets(kit)))
        _open_to_others(top)
        return kits

    yield top, make
    shutil.rmtree(top, ignore_errors=True)


def _embedding_plan(kit):
    plan = registry.plan(registry.select(names=["word_embedding_forward"]), device="cpu", seed=FIXED_SEED)
    return dataclasses.replace(plan, kit=kit)


def _messages(report):
    return "\n".join(c.message for c in report.functions[0].checks)


def _assert_hidden(report):
    fr, text = report.functions[0], _messages(report)
    assert "LEAKED" not in text and "CONTROL-UNREADABLE" not in text, text[:2000]
    assert fr.score == fr.max_score, text[:2000]
    assert any(c.name.startswith("vectorised") and c.passed for c in fr.checks), text[:2000]


@contextlib.contextmanager
def _zygote(on):
    """A fork server for this process's workers (as grade and grade-batch start one), or none."""
    from autograder.engine import forkserver

    fs = forkserver.start() if on else None
    try:
        yield fs
    finally:
        if fs is not None:
            fs.stop()


@root_only
@pytest.mark.parametrize("zygote", [True, False], ids=["forked workers", "fresh workers"])
def test_a_grading_in_process_hides_its_plans_kit(hiding, fake_kits, zygote):
    """runner.grade against a plan of another kit. Would catch (cover alone): a Session, Worker or zygote
    request that does not pass the plan's kit on to the worker's mount namespace."""
    top, make = fake_kits
    (kit, files, dirs, control), = make(1)
    sub = snooping_submission(os.path.join(top, "sub"), files, dirs, control)
    with _zygote(zygote) as fs:
        report = runner.grade(sub, _embedding_plan(kit), Limits(call_timeout=10.0))
        if fs is not None:
            assert fs.next_id >= 1 and fs.alive, "the workers were not forked from the zygote"
    _assert_hidden(report)


@root_only
def test_two_gradings_at_once_in_one_process_each_hide_their_own_kit(hiding, fake_kits):
    """Two threads of one process (as grade-batch's, forks of one zygote), each grading against a plan of
    another kit. Would catch (cover alone): a kit kept process-wide, or a zygote request carrying the other
    thread's covers: one thread's kit would go uncovered."""
    top, make = fake_kits
    kits = make(2)
    reports, errors = {}, []

    def grade(i):
        try:
            kit, files, dirs, control = kits[i]
            sub = snooping_submission(os.path.join(top, "sub%d" % i), files, dirs, control)
            reports[i] = runner.grade(sub, _embedding_plan(kit), Limits(call_timeout=10.0))
        except BaseException as e:  # noqa: B036 (reported below)
            errors.append(e)

    with _zygote(True) as fs:
        threads = [threading.Thread(target=grade, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        forked = fs.next_id, fs.alive
    assert not errors, errors
    assert forked[0] >= 2 and forked[1], "the workers were not forked from the zygote: %r" % (forked,)
    for i in range(2):
        _assert_hidden(reports[i])


@root_only
def test_instructor_tests_in_process_hide_the_kit(hiding, fake_kits, monkeypatch):
    """instructor.run leases and starts its own Session with paths.KIT_ROOT (here a fake kit's). Would catch
    (cover alone): that Session (or its lease) without the kit."""
    top, make = fake_kits
    (kit, files, dirs, control), = make(1)
    folder = os.path.join(kit, "instructor_tests")
    with open(os.path.join(folder, "test_snoop.py"), "w") as f:
        f.write(INSTRUCTOR_TEST)
    _open_to_others(top)
    monkeypatch.setattr(paths, "KIT_ROOT", kit)
    from autograder.verbs import instructor

    sub = snooping_submission(os.path.join(top, "sub"), files + [os.path.join(folder, "test_snoop.py")], dirs,
                              control)
    rep = instructor.run(sub, folder=folder, timeout=120)
    mine = [t for t in rep.tests if t.get("extra_data", {}).get("instructor_test") == "test_snoop.py"]
    assert len(mine) == 1 and mine[0]["score"] == 1.0, mine


def _drop_session_kit(module, monkeypatch):
    original = module.Session
    monkeypatch.setattr(module, "Session", lambda scratch, limits, use_cuda, deadline, user, kit=None, *more:
                        original(scratch, limits, use_cuda, deadline, user, None, *more))


@root_only
@pytest.mark.parametrize("forgotten", ["the plan's kit", "the runner's Session's kit", "the instructor Session's kit"])
def test_the_harness_sees_the_leak_when_a_kit_is_forgotten_in_process(fake_kits, monkeypatch, forgotten):
    """The in-process tests' own check, covers alone: each forgotten kit lets the same student read it all.
    Were a test above blind to a leak, this one would fail."""
    monkeypatch.setattr(sandbox, "hide_from_sandbox", lambda *a, **k: None)
    top, make = fake_kits
    (kit, files, dirs, control), = make(1)
    sub = snooping_submission(os.path.join(top, "sub"), files, dirs, control)
    if forgotten == "the instructor Session's kit":
        from autograder.verbs import instructor

        folder = os.path.join(kit, "instructor_tests")
        with open(os.path.join(folder, "test_snoop.py"), "w") as f:
            f.write(INSTRUCTOR_TEST)
        _open_to_others(top)
        monkeypatch.setattr(paths, "KIT_ROOT", kit)
        _drop_session_kit(instructor, monkeypatch)
        text = json.dumps(instructor.run(sub, folder=folder, timeout=120).tests)
    else:
        if forgotten == "the runner's Session's kit":
            _drop_session_kit(runner, monkeypatch)
        plan = _embedding_plan(None if forgotten == "the plan's kit" else kit)
        text = _messages(runner.grade(sub, plan, Limits(call_timeout=10.0)))
    assert "LEAKED" in text and os.path.join(kit, "solutions") in text, text[:2000]


# The harness's own check: in a copy of the kit whose code forgets its kit, the same attack must leak. Each
# edit is made to that scratch copy only; were a test above unable to see a leak, this one would fail.
FORGETFUL = {
    "grade": ("autograder/registry.py", "kit=paths.KIT_ROOT,", "kit=None,"),
    "instructor tests": ("autograder/verbs/instructor.py", "lease(paths.KIT_ROOT)", "lease(None)"),
}


@root_only
@pytest.mark.parametrize("road", sorted(FORGETFUL))
def test_the_harness_sees_the_leak_when_the_kits_code_forgets_its_kit(road):
    top = _scratch_top("ag-forgetful-kit-")
    try:
        kit, files, dirs, control = _snooping_kit(top)
        rel, old, new = FORGETFUL[road]
        path = os.path.join(kit, rel)
        with open(path) as f:
            text = f.read()
        assert text.count(old) == 1, "%s no longer holds %r: update FORGETFUL" % (rel, old)
        if road == "instructor tests":
            text = text.replace(", user, paths.KIT_ROOT)", ", user, None)")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
        _open_to_others(top)
        sub = snooping_submission(os.path.join(top, "sub"), files, dirs, control)
        if road == "grade":
            out = os.path.join(top, "results.json")
            r = _cli(kit, "grade", sub, "-o", out, "--device", "cpu", "--functions", EMBED_FUNCTIONS)
            assert r.returncode == 0, r.stderr[-3000:]
            leaked = _entry(json.load(open(out)), "word_embedding_forward")["output"]
        else:
            leaked = json.dumps(_instructor_tests_alone(kit, sub))
        assert "LEAKED" in leaked and "solutions" in leaked, leaked
    finally:
        shutil.rmtree(top, ignore_errors=True)


@root_only
def test_a_secret_folder_that_is_a_symbolic_link_is_hidden_too():
    """kit/solutions is a link to the instructor's private folder (the kit itself reads it through the link:
    paths.SOLUTIONS, speed's references). Would catch: the link's target left open to the student's code."""
    top = _scratch_top("ag-linked-secret-")
    try:
        kit = os.path.join(top, "kit")
        files, dirs, control = _fake_secrets(kit)
        real = os.path.join(top, "private_solutions")
        shutil.move(os.path.join(kit, "solutions"), real)
        os.symlink(real, os.path.join(kit, "solutions"))
        _open_to_others(top)
        plan = registry.plan(registry.select(names=["word_embedding_forward"]), device="cpu", seed=FIXED_SEED)
        sub = snooping_submission(os.path.join(top, "sub"), files, dirs, control)
        report = runner.grade(sub, dataclasses.replace(plan, kit=kit), Limits(call_timeout=10.0))
        fr = report.functions[0]
        text = "\n".join(c.message for c in fr.checks)
        assert "LEAKED" not in text and "CONTROL-UNREADABLE" not in text, text[:1500]
        assert fr.score == fr.max_score, text[:1500]
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --------------------------------------------------------------------------- who passes a kit
def _calls(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            scope = node
            while scope in parents and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope = parents[scope]
            yield name, node, getattr(scope, "name", "<module>")


# Where kit is passed: its keyword, or the positional index it has in each signature.
KIT_POSITION = {"build_plan": None, "Session": 5, "Worker": 4, "lease": 0, "Plan": 6}
# Calls without a kit, and why that is right: the probe starts a worker on an empty folder (no student file).
NO_KIT_NEEDED = {("autograder/engine/sandbox.py", "probe", "lease"), ("autograder/engine/sandbox.py", "probe", "Worker")}


def test_every_plan_session_worker_and_lease_in_the_kit_names_a_kit():
    """Would catch a verb or tool (now or later) that builds a plan, a Session, a Worker or a lease without
    a kit: its workers would see solutions/ and autograder/parts/ (Plan.kit None hides nothing)."""
    missing, seen = [], 0
    for top in ("autograder", "tools"):
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            for name in sorted(names):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)
                for called, node, scope in _calls(path):
                    if called not in KIT_POSITION:
                        continue
                    seen += 1
                    index = KIT_POSITION[called]
                    given = any(k.arg == "kit" for k in node.keywords) or (
                        index is not None and len(node.args) > index) or any(
                        isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
                    if not given and (rel, scope, called) not in NO_KIT_NEEDED:
                        missing.append("%s:%d %s() in %s" % (rel, node.lineno, called, scope))
    assert seen >= 6, "the scan found only %d calls: the names it looks for changed" % seen
    assert not missing, "calls that pass no kit (their workers would see the kit's secrets):\n" + "\n".join(missing)


def test_the_kits_plans_name_the_kit_and_its_secret_folders_are_private_paths():
    plan = registry.plan(registry.select(names=["word_embedding_forward"]), device="cpu", seed=FIXED_SEED)
    assert plan.kit == paths.KIT_ROOT
    assert set(sandbox.private_paths(plan.kit)) >= {os.path.join(paths.KIT_ROOT, d) for d in KIT_SECRETS}
    assert sandbox.private_paths(None) == sorted(os.path.abspath(p) for p in sandbox.PRIVATE_PATHS)


# --------------------------------------------------------------------------- the student release
@pytest.fixture(scope="module")
def release_dir():
    """(top, the unzipped release folder, its files {path: bytes})."""
    from autograder.verbs import release

    top = _scratch_top("ag-hostile-release-")
    try:
        files = release.contents()
        rel = os.path.join(top, release.TOP)
        for path, blob in files.items():
            dst = os.path.join(rel, path)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(blob)
        _open_to_others(top)
        yield top, rel, files
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_the_release_ships_the_whole_engine_and_the_audit_reads_every_module_of_it(release_dir):
    """Would catch: an engine module left out of the release, one that imports the kit, or an audit that
    no longer reads checker/ (a hidden case name or a solution line planted in any engine module)."""
    from autograder.verbs import release

    _, rel, files = release_dir
    engine = sorted(n[:-3] for n in os.listdir(os.path.join(paths.PACKAGE_DIR, "engine")) if n.endswith(".py"))
    shipped = sorted(p[len("checker/"):-3] for p in files if p.startswith("checker/") and p.endswith(".py"))
    assert shipped == engine
    for name in shipped:
        source = files["checker/%s.py" % name].decode()
        assert not release.import_problems(name, source), name
        for node in ast.walk(ast.parse(source)):  # no import by a string either (importlib, __import__)
            f = node.func if isinstance(node, ast.Call) else None
            called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            if called in ("import_module", "__import__", "find_spec", "spec_from_file_location"):
                for arg in node.args:
                    for c in ast.walk(arg):
                        if isinstance(c, ast.Constant) and isinstance(c.value, str):
                            assert not re.match(r"^(autograder|solutions|tests|registry|paths)(\.|$)", c.value), \
                                (name, ast.unparse(node))
    data = torch.load(os.path.join(rel, "checker", "public_checks.pt"), weights_only=True)
    release.audit(files, data)  # the release as built passes
    hidden = sorted(release.hidden_case_names())
    leak = sorted(release.fenced_lines())
    assert hidden and leak
    for name in shipped:
        path = "checker/%s.py" % name
        for planted in ("# %s\n" % hidden[0], "# %s\n" % leak[0]):
            with pytest.raises(release.ReleaseError, match=re.escape(path)):
                release.audit(dict(files, **{path: files[path] + planted.encode()}), data)


AUDIT_DRIVER = '''
import os, runpy, sys
KIT, REL, LOG = sys.argv[1:4]
VENV = os.path.join(KIT, ".venv") + os.sep
seen = []


def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        p = os.path.abspath(os.fsdecode(args[0]))
        if (p == KIT or p.startswith(KIT + os.sep)) and not p.startswith(VENV):
            seen.append("open " + p)
    elif event == "import" and args and str(args[0]).split(".")[0] in ("autograder", "solutions", "tests", "helpers"):
        seen.append("import " + str(args[0]))


sys.addaudithook(hook)
with open(os.path.join(KIT, "course.toml"), "rb"):  # the hook's own control: it sees a read of the kit
    pass
control = seen == ["open " + os.path.join(KIT, "course.toml")]
del seen[:]
sys.argv = [os.path.join(REL, "check.py")] + sys.argv[4:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    with open(LOG, "w") as f:
        f.write("\\n".join(["CONTROL-OK" if control else "CONTROL-FAILED"] + seen))
'''

# A student's own files beside check.py, named like modules of the engine (top-level names: the engine is
# the package checker, so none of them should ever be imported, by the checker or by its worker).
ENGINE_NAMES = ("spec", "runner", "plans", "sandbox", "worker", "wire", "zygote", "forkserver", "submission",
                "launch", "steps", "outcome", "results", "static", "checker")
SHADOW = 'import sys\nsys.stderr.write("SHADOW-IMPORTED %s\\n" % __name__)\nraise SystemExit(97)\n'


def test_the_unzipped_checker_neither_reads_nor_imports_the_kit_and_ignores_engine_named_student_files(
        release_dir, tmp_path):
    """Would catch: the shipped engine reaching back into the kit (an import of autograder, a read of
    solutions/ or of a path under the kit), or a student's spec.py/runner.py/plans.py/... beside check.py
    standing in for the engine's module, in the checker or in its worker."""
    top, rel, _ = release_dir
    mine = tempfile.mkdtemp(dir=top)
    folder = os.path.join(mine, "rnn_assignment")
    shutil.copytree(rel, folder)
    shutil.copy(os.path.join(SOLUTIONS, "rnn_layers.py"), folder)
    for name in ENGINE_NAMES:
        with open(os.path.join(folder, name + ".py"), "w") as f:
            f.write(SHADOW)
    _open_to_others(mine)
    driver, log, report = (os.path.join(mine, n) for n in ("driver.py", "audit.log", "report.json"))
    with open(driver, "w") as f:
        f.write(AUDIT_DRIVER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("AUTOGRADER_")}
    r = subprocess.run([sys.executable, driver, ROOT, folder, log, "rnn_layers", "--json", report, "--brief"],
                       cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert "SHADOW-IMPORTED" not in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with open(log) as f:
        control, *touched = f.read().split("\n")
    assert control == "CONTROL-OK", "the audit hook did not see a read of the kit: this proves nothing"
    assert not touched, "the checker reached into the kit:\n" + "\n".join(touched[:20])
    data = json.load(open(report))
    assert data["score"] == data["max_score"] > 0
    assert {fn["file"] for fn in data["functions"]} == {"rnn_layers"}


ZYGOTE_DRIVER = '''
import json, os, sys
REL, SUB = sys.argv[1:3]
sys.path.insert(0, REL)
from checker import checker as ck, forkserver, runner, sandbox

sandbox.REQUIRE_ISOLATION = False
fs = forkserver.start()
try:
    everything = ck.load_functions()
    fns = ck.select(everything, ["rnn_layers"])
    limits, budget = ck.course_limits()
    rep = runner.grade(SUB, ck.load_plan(fns, library=everything), limits, budget)
    print("RESULT " + json.dumps({"score": rep.score, "max": rep.max_score, "spawned": fs.next_id,
                                  "alive": fs.alive, "ready": fs.ready,
                                  "kit_modules": sorted(m for m in sys.modules if m.split(".")[0] == "autograder")}))
finally:
    fs.stop()
'''


def test_a_zygote_starts_from_the_release_checker_package_and_forks_its_workers(release_dir):
    """Would catch: forkserver.BOOT naming the kit's package (autograder.engine) instead of its own
    (__package__): in the release the zygote would not start, and every worker would start fresh."""
    top, rel, _ = release_dir
    mine = tempfile.mkdtemp(dir=top)
    sub = write_submission(os.path.join(mine, "sub"), {})
    shutil.copy(os.path.join(SOLUTIONS, "rnn_layers.py"), sub)
    driver = os.path.join(mine, "zygote_driver.py")
    with open(driver, "w") as f:
        f.write(ZYGOTE_DRIVER)
    _open_to_others(mine)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("AUTOGRADER_")}
    r = subprocess.run([sys.executable, driver, rel, sub], cwd=mine, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    got = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])
    assert got["ready"] is True and got["alive"] is True and got["spawned"] >= 1, got
    assert got["score"] == got["max"] > 0, got
    assert got["kit_modules"] == [], got


def test_the_checker_and_the_grader_refuse_the_same_student_file_names(release_dir):
    """A student's autograder.py (or checker.py) beside rnn_layers.py: the public checker is said to give the
    grader's messages. With KIT_MODULES = (__package__.split(".")[0], ...), the release's checker refuses
    checker.py and copies autograder.py, and Gradescope refuses autograder.py and copies checker.py: a
    rnn_layers.py that imports its own autograder.py helper passes every check locally and gets 0 on
    Gradescope. Would catch: the two engines disagreeing on any such name."""
    top, rel, _ = release_dir
    mine = tempfile.mkdtemp(dir=top)
    sub = write_submission(os.path.join(mine, "sub"), {"autograder.py": "X = 1\n", "checker.py": "X = 1\n"})
    shutil.copy(os.path.join(SOLUTIONS, "rnn_layers.py"), sub)
    said = {}
    for where, path, package in (("kit", ROOT, "autograder.engine"), ("release", rel, "checker")):
        code = ("import json, sys; sys.path.insert(0, %r)\nfrom %s import submission as s\n"
                "st = s.locate(%r, ['rnn_layers'])\nprint(json.dumps(sorted(s.shadowing(st, ['rnn_layers']))))"
                % (path, package, sub))
        r = subprocess.run([sys.executable, "-I", "-c", code], cwd=mine, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        said[where] = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["kit"] == said["release"], said


# --------------------------------------------------------------------------- process-wide state
REFERENCE_B = '''
import torch
_COUNT = __import__("os").path.join(__import__("os").path.dirname(__file__), "executed")
open(_COUNT, "a").write("x")


def word_embedding_forward(x, W):
    return torch.zeros(x.shape + (W.shape[1],), dtype=W.dtype), None
'''


def test_reference_modules_are_kept_per_file_and_loaded_once_under_threads(tmp_path):
    """speed.reference_module keeps a process-wide dict. Would catch: a cache keyed by the module's name (two
    plans' reference folders, one rnn_layers.py each: the second would time and check against the first's),
    or a load that runs a reference file twice when grading threads ask at once."""
    folder = tmp_path / "other_reference"
    folder.mkdir()
    (folder / "rnn_layers.py").write_text(REFERENCE_B)
    mine = str(folder / "rnn_layers.py")
    ours = os.path.join(SOLUTIONS, "rnn_layers.py")
    got, errors = [], []

    def load():
        try:
            got.append(speed.reference_module(mine))
        except BaseException as e:  # noqa: B036
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(got) == 8 and all(m is got[0] for m in got)
    assert (folder / "executed").read_text() == "x", "the reference file ran more than once"
    theirs = speed.reference_module(ours)
    assert theirs is not got[0]
    x, W = torch.tensor([[0, 1]]), torch.ones(3, 2, dtype=torch.float64)
    assert torch.equal(theirs.word_embedding_forward(x, W)[0], W[x])
    assert torch.equal(got[0].word_embedding_forward(x, W)[0], torch.zeros(1, 2, 2, dtype=torch.float64))
    # never registered, least of all under the student's module name (other tests may have loaded an rnn_layers)
    assert "_reference_rnn_layers" not in sys.modules
    assert all(sys.modules.get("rnn_layers") is not m for m in (theirs, got[0]))


def test_speed_references_import_nothing_beside_them():
    """The reference of a timed function runs in the trusted grading process (speed.reference_module).
    solutions/tbptt.py does `from rnn_layers import ...`: were tbptt ever timed, the grader would import
    whatever `rnn_layers` its sys.path finds first (grade-batch started from a folder holding a student's
    rnn_layers.py: the student's code, outside the sandbox). Would catch such an import in any timed reference."""
    timed_files = sorted({fn.file for fn in registry.FUNCTIONS if fn.speed})
    assert timed_files
    graded = set(registry.FILES)
    for file in timed_files:
        with open(os.path.join(SOLUTIONS, file + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            tops = {n.split(".")[0] for n in names} | ({"."} if isinstance(node, ast.ImportFrom) and node.level else set())
            assert not tops & (graded | {"."}), "%s.py (timed in the grader's process) imports %s" % (file, tops)


# The fields of a registry entry (spec.GradedFunction, Case) that a course or a verb must never change in place.
ENTRY_FIELDS = {"points", "cases", "mistakes", "rtol", "speed", "forbidden_ops", "time_axis"}
# Objects with fields of those names that are no registry entry: config.load fills a Config's own points.
NOT_ENTRIES = {"cfg"}
MUTATORS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "update", "setdefault", "popitem"}


def test_no_verb_changes_a_registry_entry_in_place():
    """config.apply returns copies now. Would catch: an assignment to (or a mutation of) .points, .cases, ...
    anywhere in the kit's code: in a process that builds two plans (grade-batch, the release, a test run),
    one course's settings would leak into the next."""
    found = []
    for top in ("autograder", "tools"):
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    targets = node.targets if isinstance(node, ast.Assign) else \
                        [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                    for t in targets:
                        for sub in ast.walk(t):
                            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) \
                                    and sub.value.id in NOT_ENTRIES:
                                continue
                            if isinstance(sub, ast.Attribute) and sub.attr in ENTRY_FIELDS:
                                found.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno, ast.unparse(t)))
                            if isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Attribute) \
                                    and sub.value.attr in ENTRY_FIELDS and not (
                                        isinstance(sub.value.value, ast.Name) and sub.value.value.id in NOT_ENTRIES):
                                found.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno, ast.unparse(t)))
                    if isinstance(node, ast.Call):
                        f = node.func
                        if isinstance(f, ast.Attribute) and f.attr in MUTATORS and isinstance(f.value, ast.Attribute) \
                                and f.value.attr in ENTRY_FIELDS:
                            found.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno, ast.unparse(node)))
                        if isinstance(f, ast.Name) and f.id in ("setattr", "delattr") and len(node.args) > 1 \
                                and isinstance(node.args[1], ast.Constant) and node.args[1].value in ENTRY_FIELDS:
                            found.append("%s:%d %s" % (os.path.relpath(path, ROOT), node.lineno, ast.unparse(node)))
    assert not found, "\n".join(sorted(set(found)))


def test_config_apply_leaves_the_registry_as_it_was():
    """Would catch: apply changing the registry's entries (or sharing their case lists with its copies)."""
    before = [(fn.points, list(fn.cases)) for fn in registry.FUNCTIONS]
    name = registry.FUNCTIONS[0].name
    cfg = config.Config(float32=False, cuda=False, points={name: 99.0})
    applied = config.apply(cfg, registry.FUNCTIONS)
    assert applied[0].points == 99.0
    assert all(c.dtype != torch.float32 and c.device != "cuda" for fn in applied for c in fn.cases)
    for fn, copy in zip(registry.FUNCTIONS, applied):
        assert fn is not copy and fn.cases is not copy.cases
    applied[0].cases.clear()
    assert [(fn.points, list(fn.cases)) for fn in registry.FUNCTIONS] == before
    assert config.apply(config.Config(), registry.FUNCTIONS)[0].points == before[0][0]


def test_the_observer_the_reference_runs_under_sees_its_own_thread_only():
    """speed.py runs the reference under worker.Observer in the grading process, whose other threads grade
    other students (grade-batch). Would catch an observer that is process-wide: it would record (and slow)
    the torch calls of every other grading thread, the oracle's and compare's included."""
    from autograder.engine.worker import Observer

    fn = registry.BY_NAME["word_embedding_forward"]
    assert fn.forbidden_ops
    idx, W = torch.tensor([[0, 1, 2]]), torch.randn(4, 3)
    stop, calls = threading.Event(), [0]

    def other_thread():
        while not stop.is_set():
            torch.nn.functional.embedding(idx, W)
            calls[0] += 1

    t = threading.Thread(target=other_thread)
    record = []
    with Observer(fn.forbidden_ops, record):
        t.start()
        try:
            while calls[0] < 200:
                torch.mm(W, W.t())
        finally:
            stop.set()
            t.join(timeout=30)
    assert record == [], record
    with Observer(fn.forbidden_ops, record):  # the same call on this thread is recorded: the test can fail
        torch.nn.functional.embedding(idx, W)
    assert record, "the observer recorded nothing on its own thread"


# --------------------------------------------------------------------------- what a student's text does
FLOOD = '''
_EMOJI = "\\U0001F600"
_HUGE = type(_EMOJI * 3000, (Exception,), {})  # a class name of 3000 astral characters (12 JSON bytes each)


def _flood():
    print((_EMOJI + '"\\\\\\x01') * 5000)
    raise _HUGE((_EMOJI + '\\x01"\\\\\\u2028') * 200000)


print(_EMOJI * 300000)
'''


def _flooding_submission(dst):
    """The stubs of every file, each function printing and raising hundreds of kilobytes of characters that
    JSON escapes at 6 to 12 bytes each."""
    files = {}
    for name in sorted(os.listdir(ASSIGNMENT)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(ASSIGNMENT, name)) as f:
            text = f.read()
        if name[:-3] in registry.FILES:
            text, n = re.subn(r"raise NotImplementedError\(.*\)", "_flood()", text)
            assert n, name
            text = text.replace("import torch\n", "import torch\n" + FLOOD, 1)
        files[name] = text
    return write_submission(dst, files)


GRADESCOPE_LIMIT = 1_000_000


@root_only
def test_results_json_stays_under_gradescopes_limit_whatever_the_student_prints_and_raises(tmp_path):
    """Every function of every file (and the instructor tests, which grading everything runs) raises a
    megabyte of emoji, control characters, quotes and backslashes, under a class name of 3000 emoji, and
    prints as much. Would catch: a clip counted in characters rather than JSON bytes, an entry or a note
    that is not clipped at all."""
    sub = _flooding_submission(str(tmp_path / "sub"))
    out = str(tmp_path / "results.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_")}
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    size = os.path.getsize(out)
    data = json.load(open(out))
    assert size < GRADESCOPE_LIMIT, size
    assert data["score"] == 0
    assert any("\U0001F600" in t.get("output", "") for t in data["tests"])  # the messages did get through
    assert len(data["tests"]) >= len(registry.FUNCTIONS)
    for t in data["tests"]:
        assert len(json.dumps(t.get("output", ""))) <= 8000 + 2, (t["name"], len(json.dumps(t.get("output", ""))))


SURROGATE_EDIT = "    # BEGIN SOLUTION\n    raise RuntimeError('a lone surrogate: \\ud800')\n"


def _surrogate_submission(dst):
    with open(os.path.join(SOLUTIONS, "rnn_layers.py")) as f:
        text = f.read()
    assert text.count(ANCHOR) == 1
    return write_submission(dst, {"rnn_layers.py": text.replace(ANCHOR, SURROGATE_EDIT + ANCHOR.split("\n", 1)[1])})


def test_a_lone_surrogate_in_an_exception_message_still_gives_results_json(tmp_path):
    """The student's word_embedding_forward raises RuntimeError('\\ud800'). The worker sends it as JSON's
    escape, wire.decode gives the grader a str with a lone surrogate, and `print(results.table(...))` in
    verbs/grade.command raises UnicodeEncodeError before `write(outcome, args.output)`: no results.json, so
    run_autograder exits 1 and Gradescope shows a failed autograder. Would catch exactly that."""
    sub = _surrogate_submission(str(tmp_path / "sub"))
    out = str(tmp_path / "results.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_") and k != "PYTHONIOENCODING"}
    env["LANG"] = "C.UTF-8"
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu",
                        "--functions", EMBED_FUNCTIONS], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert os.path.exists(out), r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.load(open(out))
    assert _entry(data, "word_embedding_forward")["score"] == 0


@root_only
def test_a_lone_surrogate_from_one_student_does_not_stop_the_class_report(tmp_path):
    """grade-batch of two students, one of whom raises RuntimeError('\\ud800'). Would catch: the batch's
    own report (report.write: summary.md, markdown(s).encode()) failing on that student's message."""
    klass = tmp_path / "class"
    _surrogate_submission(str(klass / "mallory"))
    write_submission(str(klass / "alice"), {})
    shutil.copy(os.path.join(SOLUTIONS, "rnn_layers.py"), str(klass / "alice"))
    outdir = str(tmp_path / "out")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGRADER_") and k != "PYTHONIOENCODING"}
    env["LANG"] = "C.UTF-8"
    r = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(klass), "-o", outdir, "--device",
                        "cpu", "--functions", EMBED_FUNCTIONS, "-j", "2"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert os.path.exists(os.path.join(outdir, "summary.md")), r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-2000:]


# --------------------------------------------------------------------------- what the kit leaves in reach
def _fenced_lines_over(n):
    from autograder.verbs import release

    return {line for line in release.fenced_lines() if len(line) > n}


def test_no_tracked_file_a_worker_can_reach_holds_a_line_of_a_solution():
    """KIT_SECRETS is a deny-list: every tracked file outside it is readable by the sandbox uid (the kit's
    root keeps o+x). Would catch a solution line (over 20 characters: not a generic one) in any of them."""
    tracked = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, timeout=60)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    lines = _fenced_lines_over(20)
    assert lines
    found = []
    for rel in tracked.stdout.decode().split("\0"):
        if not rel or rel.split("/")[0] in KIT_SECRETS:
            continue
        try:
            with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        found += ["%s: %r" % (rel, line) for line in sorted(lines) if line in text]
    assert not found, "\n".join(found)
