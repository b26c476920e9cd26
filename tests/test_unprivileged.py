"""Grading without root (a cluster job runs as the instructor): the kernel's layers or nothing.

As root these tests drop to an unprivileged uid (setpriv) and run the CLI on a copy of the kit that
uid owns, as an instructor's job would. Without root the worker keeps the instructor's uid, so what
keeps student code off the instructor's files and processes is the user namespace, the mount
namespace (the kit's secrets covered, everything but the scratch folder read-only) and seccomp.
Where the kernel refuses user namespaces (simulated here by a seccomp filter on the grader that
denies unshare), the grader refuses to run student code unless asked with --unsafe-no-isolation.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
from helpers import ROOT, make_variant

UID = 65534  # nobody
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root (to become an unprivileged user) and setpriv")

# The grader, with unshare() denied to it and to everything it starts: a kernel without user namespaces.
NO_USERNS = ("import errno, os, sys, pyseccomp as sc\n"
             "f = sc.SyscallFilter(sc.ALLOW)\n"
             "f.add_rule(sc.ERRNO(errno.EPERM), 'unshare')\n"
             "f.load()\n"
             "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n")


@pytest.fixture(scope="module")
def kit():
    """A copy of the kit owned by the unprivileged uid (an instructor's own checkout), in a folder that
    uid can reach (pytest's own temporary folders are root's alone)."""
    top = tempfile.mkdtemp(prefix="ag-unprivileged-")
    os.chmod(top, 0o755)
    kit = os.path.join(top, "kit")
    for name in ("autograder", "solutions", "instructor_tests"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(kit, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "course.toml"), kit)
    give(top)
    yield kit
    shutil.rmtree(top, ignore_errors=True)


def give(top):
    """Everything under `top` to the unprivileged uid."""
    for folder, dirs, files in os.walk(top):
        for name in dirs + files + [""]:
            path = os.path.join(folder, name)
            os.chown(path, UID, UID)
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)


@pytest.fixture
def work(kit):
    """A folder of this test's own that the unprivileged uid owns."""
    path = tempfile.mkdtemp(prefix="work-", dir=os.path.dirname(kit))
    give(path)
    return path


def grade(kit, sub, *extra, wrapper=None):
    out = os.path.join(os.path.dirname(kit), "results-%d.json" % len(os.listdir(os.path.dirname(kit))))
    python = [sys.executable] + (["-c", wrapper] if wrapper else [])
    cmd = ["setpriv", "--reuid", str(UID), "--regid", str(UID), "--clear-groups"] + python + [
        "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu", "--files", "rnn_layers",
        "--no-instructor-tests", *extra]
    r = subprocess.run(cmd, cwd=kit, capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "HOME": kit, "PYTHONPATH": kit, "LANG": "C.UTF-8"})
    data = json.load(open(out)) if os.path.exists(out) else None
    return r, data


def entry(data, name):
    return next(t for t in data["tests"] if t["name"] == name)


def visible_scores(data):
    return {t["tags"][0]: (t["score"], t["max_score"]) for t in data["tests"] if t.get("visibility") == "visible"
            and t.get("tags") and t["tags"][0] != "autograder"}


def test_the_solutions_get_full_marks_without_root_with_every_layer_active(kit):
    r, data = grade(kit, os.path.join(kit, "solutions", "torch"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) == 33, r.stdout
    layers = entry(data, "sandbox: isolation layers")["output"]
    assert "Every isolation layer was active." in layers, layers
    assert "user namespace: active" in layers and "sandbox uid" not in layers, layers


def test_without_root_student_code_cannot_touch_the_instructors_files_or_processes(kit, work):
    """The worker runs as the instructor's own uid: the kit's files are writable by that uid and its
    secrets readable, the grader can be signalled, and another process of that uid (another student's
    worker in a batch) can be read through /proc. Each attempt must fail."""
    other = subprocess.Popen(["setpriv", "--reuid", str(UID), "--regid", str(UID), "--clear-groups", "sleep", "120"],
                             env={"SECRET": "another student's inputs"})
    try:
        _the_attempts_fail(kit, work, other)
    finally:
        other.kill()
        other.wait()


def _the_attempts_fail(kit, work, other):
    attempts = textwrap.dedent("""
        import os, signal
        done = []
        def attempt(name, f):
            try:
                f()
                done.append(name)
            except OSError:
                pass
        attempt('read solutions', lambda: open(%(sol)r).read())
        attempt('write the grader', lambda: open(%(code)r, 'a').write('# changed'))
        attempt('write beside the kit', lambda: open(%(beside)r, 'w').write('x'))
        attempt('signal the grader', lambda: os.kill(os.getppid(), signal.SIGSTOP))
        attempt('signal everyone', lambda: os.kill(-1, signal.SIGSTOP))
        attempt('fork', lambda: os.fork() or os._exit(0))
        attempt('read another process of the uid', lambda: open('/proc/%(other)d/environ').read())
        if done:
            raise RuntimeError('succeeded: %%s' %% done)
        """) % {"sol": os.path.join(kit, "solutions", "torch", "rnn_layers.py"),
                "code": os.path.join(kit, "autograder", "engine", "results.py"),
                "beside": os.path.join(os.path.dirname(kit), "planted.txt"), "other": other.pid}
    sub = make_variant(os.path.join(work, "sub"), "rnn_layers.py", [
        ("    # BEGIN SOLUTION\n    out = W[x]", "    # BEGIN SOLUTION\n" + textwrap.indent(attempts, "    ")
         + "    out = W[x]")])
    give(work)
    before = open(os.path.join(kit, "autograder", "engine", "results.py")).read()
    r, data = grade(kit, sub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(os.path.join(kit, "autograder", "engine", "results.py")).read() == before
    assert not os.path.exists(os.path.join(os.path.dirname(kit), "planted.txt"))
    scores = visible_scores(data)
    assert all(got == best for name, (got, best) in scores.items()), scores  # every attempt failed


def refused(kit, work, wrapper):
    """Grade a submission that leaves a marker at import under `wrapper`: it must be refused unrun.
    Returns (the submission, its marker, the hidden text of results.json)."""
    marker = os.path.join(work, "ran")
    sub = make_variant(os.path.join(work, "sub"), "rnn_layers.py", [
        ("import torch\n", "import torch\nopen(%r, 'w').write('student code ran')\n" % marker)])
    give(work)
    r, data = grade(kit, sub, wrapper=wrapper)
    assert r.returncode == 1, r.stdout + r.stderr
    assert not os.path.exists(marker), "student code ran without isolation"
    assert data["score"] == 0
    hidden = "\n".join(t.get("output", "") for t in data["tests"])
    assert "refusing to run student code without isolation" in hidden and "--unsafe-no-isolation" in hidden
    return sub, marker, hidden


def test_without_user_namespaces_student_code_does_not_run(kit, work):
    sub, marker, _ = refused(kit, work, NO_USERNS)

    r, data = grade(kit, sub, "--unsafe-no-isolation", wrapper=NO_USERNS)  # asked for by name: it runs
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.exists(marker)
    assert "WITHOUT isolation" in data["output"] and "WITHOUT isolation" in r.stdout
    assert "user namespace: not available" in entry(data, "sandbox: isolation layers")["output"]


FORWARD = {"word_embedding_forward"}
ATTACKS = {  # name: (word_embedding_forward's first lines, words expected in its entries, what loses points)
    "a process made with fork (item 4)": ("LSTM_IN_A_CHILD", "Operation not permitted", None),
    "a thread (item 4)": ("THREAD", "can't start new thread", None),
    "the record emptied through gc (item 4)": ("CLEAR_RECORD", "does not allow", FORWARD),  # (the backward
    "System V shared memory (item 5)": ("SHM", "shmget refused", None),  # check's forward is graded alone)
    "a worker that stops reading (item 2)": ("STOP_READING", "stopped reading its inputs", None),
    "a frame whose entries share their bytes (item 3)": ("SAME_BYTES", "malformed data", None),
    "a loop over the batch behind stopped clocks (item 8)": ("SLOW_BEHIND_STOPPED_CLOCKS", "slower than the reference",
                                                              FORWARD),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_hostile_submissions_are_contained_without_root_too(kit, work, name):
    """test_hostile.py's attacks, graded by an unprivileged grader: word_embedding_forward and the backward
    that calls it lose, every other function keeps full marks."""
    import test_hostile as hostile

    attr, words, losers = ATTACKS[name]
    losers = losers or hostile.EMBED
    body = getattr(hostile, attr, None) or getattr(this_module(), attr) or _wire_attack(attr)
    at_import = AT_IMPORT.get(attr, "")
    sub = hostile.attack(_Path(work), body, at_import=at_import() if callable(at_import) else at_import)
    give(work)
    r, data = grade(kit, sub, "--functions", "temporal_affine_forward,word_embedding_forward,word_embedding_backward")
    assert r.returncode == 0, r.stdout + r.stderr
    scores = visible_scores(data)
    assert len(scores) == 3, scores
    for fn, (got, best) in scores.items():
        if fn in losers:
            assert got < best, (fn, scores)
        elif fn not in hostile.EMBED:  # (the backward of a slow forward may miss its vectorisation check)
            assert got == best, (fn, scores)
    text = "\n".join(t.get("output", "") for t in data["tests"] if t.get("tags", [""])[0] in hostile.EMBED)
    assert words in text, text


def this_module():
    return sys.modules[__name__]


class _Path(str):
    """What test_hostile.attack expects of pytest's tmp_path: a folder that `/ "sub"` extends."""

    def __truediv__(self, name):
        return os.path.join(self, name)


THREAD = ("import threading\nbox = []\n"
          "t = threading.Thread(target=lambda: box.append(torch.nn.functional.embedding(x, W)))\n"
          "t.start()\nt.join()\nreturn box[0], (x, W.shape[0])\n")
CLEAR_RECORD = ("import gc\nout = torch.nn.functional.embedding(x, W)\n"
                "for o in gc.get_objects():\n"
                "    if isinstance(o, list) and any(isinstance(v, str) and 'embedding' in v for v in o[:3]):\n"
                "        del o[:]\n"
                "return out, (x, W.shape[0])\n")
SHM = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
       "if libc.shmget(0x5ead, 1 << 20, 0o1666) < 0:\n"
       "    raise OSError(ctypes.get_errno(), 'shmget refused')\n")


def test_grade_batch_without_user_namespaces_refuses_once_before_grading_anyone(kit, work):
    marker = os.path.join(work, "ran")
    make_variant(os.path.join(work, "class", "alice"), "rnn_layers.py", [
        ("import torch\n", "import torch\nopen(%r, 'w').write('student code ran')\n" % marker)])
    give(work)
    cmd = ["setpriv", "--reuid", str(UID), "--regid", str(UID), "--clear-groups", sys.executable, "-c", NO_USERNS,
           "-m", "autograder", "grade-batch", os.path.join(work, "class"), "-o", os.path.join(work, "out"),
           "--device", "cpu", "--functions", "rnn_step_forward", "--no-instructor-tests"]
    r = subprocess.run(cmd, cwd=kit, capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "HOME": kit, "PYTHONPATH": kit, "LANG": "C.UTF-8"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "refusing to run student code without isolation" in r.stderr, r.stderr
    assert not os.path.exists(marker)


# At import: lower the address-space limit of every other process of the uid (the grader, the zygote,
# the other students' workers): the kernel allows it to the same uid.
PRLIMIT_OTHERS = r'''
import os as _os, resource as _res, time as _time
def _ancestors():
    out, p = set(), _os.getpid()
    while p > 1:
        out.add(p)
        p = int([l for l in open("/proc/%d/status" % p) if l.startswith("PPid:")][0].split()[1])
    return out
_hit, _t = [], _time.time()
while _time.time() - _t < 6 and not _hit:
    for _p in _os.listdir("/proc"):
        if _p.isdigit() and int(_p) not in _ancestors() and _os.stat("/proc/" + _p).st_uid == _os.getuid():
            try:
                _res.prlimit(int(_p), _res.RLIMIT_AS, (1 << 20, 1 << 20))
                _hit.append(int(_p))
            except OSError:
                pass
    _time.sleep(0.01)
'''


def test_a_worker_cannot_change_the_limits_of_other_processes_of_its_uid(kit, work):
    """Without root, the grader, the zygote and every student's worker share one uid: a classmate's limits
    lowered by the attacker gave that classmate 0 (found by review)."""
    from helpers import copy_solutions

    cls = os.path.join(work, "class")
    make_variant(os.path.join(cls, "aaa"), "rnn_layers.py", [("import torch\n", "import torch\n" + PRLIMIT_OTHERS)])
    copy_solutions(os.path.join(cls, "bbb"))
    give(work)
    out = os.path.join(work, "out")
    cmd = ["setpriv", "--reuid", str(UID), "--regid", str(UID), "--clear-groups", sys.executable, "-m", "autograder",
           "grade-batch", cls, "-o", out, "--device", "cpu", "--functions", "rnn_step_forward,rnn_forward",
           "--no-instructor-tests", "-j", "2"]
    r = subprocess.run(cmd, cwd=kit, capture_output=True, text=True, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "HOME": kit, "PYTHONPATH": kit, "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.load(open(os.path.join(out, "results", "bbb", "results.json")))
    assert data["score"] == sum(t["max_score"] for t in data["tests"]), r.stdout + r.stderr


def _wire_attack(name):
    import test_hostile_wire

    return getattr(test_hostile_wire, name)


SAME_BYTES = None  # filled below, from test_hostile_wire (item 3's frames)
SLOW_BEHIND_STOPPED_CLOCKS = "for n in range(x.shape[0]):\n    W[x[n]].sum()\n"
AT_IMPORT = {"SAME_BYTES": lambda: _wire_attack("SEND"),
             "SLOW_BEHIND_STOPPED_CLOCKS": "import time\n"
                                           "for _name in ('perf_counter', 'monotonic', 'process_time', 'thread_time'):\n"
                                           "    setattr(time, _name, lambda: 0.0)\n"
                                           "    setattr(time, _name + '_ns', lambda: 0)\n"}


# A kernel older than 5.12 (RHEL 8): user namespaces, but no recursive read-only mount.
NO_MOUNT_SETATTR = NO_USERNS.replace("'unshare'", "'mount_setattr'")


def test_without_read_only_mounts_student_code_does_not_run(kit, work):
    """The worker would otherwise be able to rewrite the kit's own code, which every later grading runs."""
    _, _, hidden = refused(kit, work, NO_MOUNT_SETATTR)
    assert "read-only file systems not available" in hidden, hidden
