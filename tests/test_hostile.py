"""Hostile submissions: each attack costs its own function(s) exactly, everything else keeps full
credit, and nothing outside the worker is touched.

The attack sits in word_embedding_forward of an otherwise correct rnn_layers.py, so the expected
scores are exact: 0 for word_embedding_forward and for word_embedding_backward (its checks call
the student's forward to get a cache), full marks for the other nine functions. Tests that need
root (a separate sandbox user, process and network isolation) skip cleanly otherwise.
"""
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from helpers import ROOT, full, make_variant, messages, scores

from autograder.engine import runner, sandbox
from autograder.engine.sandbox import Limits

FAST = Limits(call_timeout=3.0)
EMBED = {"word_embedding_forward", "word_embedding_backward"}
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox user, isolation)")
ANCHOR = "    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n"


def attack(tmp_path, body, imports="", at_import=""):
    """rnn_layers.py whose word_embedding_forward runs `body` first (then computes the answer)."""
    head = "import torch\n"
    edits = [(head, head + imports + at_import),
             (ANCHOR, "    # BEGIN SOLUTION\n" + textwrap.indent(textwrap.dedent(body), "    ") + "    out = W[x]\n")]
    return make_variant(str(tmp_path / "sub"), "rnn_layers.py", edits)


def expect_exact(report, zero=EMBED, words=None):
    got, best = scores(report), full(report)
    for name in got:
        want = 0.0 if name in zero else best[name]
        assert got[name] == want, "%s: got %s, want %s\n%s" % (name, got[name], want, messages(report, name))
    if words:
        text = messages(report, "word_embedding_forward")
        assert words in text, text


def grade(sub, plans, limits=FAST):
    """The attack graded on every check but the vectorisation checks: their pass is a timing (test_speed.py
    tests them), and an exact score must not hang on how loaded the machine is."""
    return runner.grade(sub, dataclasses.replace(plans(["rnn_layers"]), speed=[]), limits)


def cli(sub, out, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", sub, "-o", out, "--device", "cpu",
                           "--files", "rnn_layers", *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)


# --------------------------------------------------------------------------- crashes and hangs
@pytest.mark.parametrize("body,words", [
    ("while True:\n    pass\n", "timed out"),
    ("import sys\nsys.exit(0)\n", "SystemExit"),
    ("import os\nos._exit(0)\n", "exited with status 0"),
    ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
], ids=["infinite loop", "sys.exit", "os._exit", "segfault via ctypes", "KeyboardInterrupt"])
def test_crashes_and_hangs_in_a_function(plans, tmp_path, body, words):
    expect_exact(grade(attack(tmp_path, body), plans), words=words)


def test_memory_hog_fails_with_the_limit_named(plans, tmp_path):
    sub = attack(tmp_path, "hog = torch.empty(int(64e9) // 8, dtype=torch.float64)\nhog.fill_(1)\n")
    expect_exact(grade(sub, plans), words="memory limit")


def test_python_memory_hog_fails_with_the_limit_named(plans, tmp_path):
    sub = attack(tmp_path, "hog = []\nwhile True:\n    hog.append(bytearray(1 << 24))\n")
    expect_exact(grade(sub, plans), words="memory limit")


# What a CUDA build of torch does at import (and CUDA when it starts): reserve gigabytes of address
# space it never touches. Here the student's module does it at import, before any check runs: an
# 8 GB PROT_NONE reservation and torch's own largest library mapped read-only until the read-only
# file mappings pass 2 GB. An address-space cap (the old RLIMIT_AS of 896 MB) gave 0/82 this way.
RESERVE = """import ctypes, glob, mmap, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_RESERVED = _libc.mmap(None, 8 << 30, 0, 0x22 | 0x4000, -1, 0)  # PROT_NONE, PRIVATE|ANONYMOUS|NORESERVE
assert _RESERVED not in (None, ctypes.c_void_p(-1).value), "reservation failed: %d" % ctypes.get_errno()
_lib = max(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "*.so*")), key=os.path.getsize)
_MAPS = []
while sum(len(m) for m in _MAPS) < (2 << 30):
    with open(_lib, "rb") as _f:
        _MAPS.append(mmap.mmap(_f.fileno(), 0, access=mmap.ACCESS_READ))
"""


def test_gigabytes_of_reserved_address_space_still_get_full_marks(plans, tmp_path):
    sub = attack(tmp_path, "", at_import=RESERVE)
    expect_exact(grade(sub, plans), zero=set())


def test_two_gigabytes_of_tensors_are_stopped_even_beside_reserved_address_space(plans, tmp_path):
    sub = attack(tmp_path, "hog = torch.ones((2 << 30) // 8, dtype=torch.float64)\n", at_import=RESERVE)
    expect_exact(grade(sub, plans), words="memory limit")


def test_shared_memory_that_the_data_limit_does_not_count_is_stopped_by_the_watchdog(plans, tmp_path):
    body = "import mmap\nm = mmap.mmap(-1, 2 << 30)\nfor i in range(0, len(m), 4096):\n    m[i] = 1\n"
    expect_exact(grade(attack(tmp_path, body), plans), words="memory limit")


def test_print_flood_is_capped_and_results_stay_small(tmp_path):
    sub = attack(tmp_path, "for _ in range(200000):\n    print('spam' * 100)\n",
                 at_import="print('x' * (1 << 22))\n")
    out = str(tmp_path / "results.json")
    r = cli(sub, out)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(out) < 200_000
    data = json.load(open(out))
    by_fn = {t["tags"][0]: t for t in data["tests"] if t["visibility"] == "visible"}
    assert by_fn["rnn_forward"]["score"] == by_fn["rnn_forward"]["max_score"]
    assert "more bytes of output dropped" in data["output"]


def test_huge_file_write_hits_the_file_size_limit(plans, tmp_path):
    sub = attack(tmp_path, "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (200 << 20))\n")
    expect_exact(grade(sub, plans), words="file-size limit")


# --------------------------------------------------------------------------- the boundary
def test_pickle_payload_is_never_unpickled(plans, tmp_path):
    marker = tmp_path / "pwned"
    body = ("class Payload:\n"
            "    def __reduce__(self):\n"
            "        import os\n"
            "        return (os.system, ('touch %s',))\n"
            "return Payload(), (x, W.shape[0])\n") % marker
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report, zero={"word_embedding_forward"}, words="should be a torch.Tensor")
    assert not marker.exists()


def test_tensor_subclasses_and_pretenders_are_rejected(plans, tmp_path):
    body = ("class Liar(torch.Tensor):\n"
            "    def __eq__(self, other):\n        return True\n"
            "return torch.zeros(x.shape + (W.shape[1],), dtype=W.dtype).as_subclass(Liar), (x, W.shape[0])\n")
    expect_exact(grade(attack(tmp_path, body), plans), zero={"word_embedding_forward"}, words="Liar")


def test_monkeypatching_torch_in_the_worker_changes_nothing_in_the_grader(plans, tmp_path):
    patch = ("import math\nimport numpy\n"
             "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
             "torch.Tensor.__eq__ = lambda a, b: True\ntorch.isfinite = lambda t: torch.ones_like(t, dtype=torch.bool)\n"
             "math.isclose = lambda *a, **k: True\n"
             "numpy.allclose = lambda *a, **k: True\n")
    body = "return torch.zeros(x.shape + (W.shape[1],), dtype=W.dtype, device=W.device), (x, W.shape[0])\n"
    sub = attack(tmp_path, body, at_import=patch)
    expect_exact(grade(sub, plans), zero={"word_embedding_forward"}, words="is wrong")


# --------------------------------------------------------------------------- forbidden APIs
@pytest.mark.parametrize("body,words", [
    ("return torch.nn.functional.embedding(x, W), (x, W.shape[0])\n", "F.embedding"),
    ("return torch.nn.Embedding.from_pretrained(W).forward(x).detach(), (x, W.shape[0])\n", "F.embedding"),
    ("Wg = W.detach().clone().requires_grad_(True)\nWg[x].sum().backward()\n", "autograd"),
    ("Wg = torch.tensor(W.tolist(), dtype=W.dtype, requires_grad=True)\n"
     "torch.autograd.grad(Wg[x].sum(), Wg)\n", "autograd"),
    ("return torch.embedding(W, x), (x, W.shape[0])\n", "torch.embedding"),
    ("g = torch.nn.functional.embedding\n"
     "torch.nn.functional.embedding = [c.cell_contents for c in g.__closure__ if callable(c.cell_contents)][0]\n"
     "return torch.nn.functional.embedding(x, W), (x, W.shape[0])\n", "after undoing the grader's guard"),
], ids=["F.embedding", "nn.Embedding", "Tensor.backward", "autograd.grad", "torch.embedding", "guard undone"])
def test_forbidden_api_used_to_get_right_answers_gives_zero(plans, tmp_path, body, words):
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report, zero={"word_embedding_forward"}, words=words)
    assert "does not allow" in messages(report, "word_embedding_forward")


def test_forbidden_api_in_the_loss_gives_zero_and_is_reported_statically(plans, tmp_path):
    edits = [("    loss = -(m * picked).sum() / N\n",
              "    loss = (torch.nn.functional.cross_entropy(x.reshape(-1, x.shape[2]), y.reshape(-1),"
              " reduction='none') * m.reshape(-1)).sum() / N\n")]
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", edits)
    report = grade(sub, plans)
    expect_exact(report, zero={"temporal_softmax_loss"})
    fr = next(f for f in report.functions if f.fn.name == "temporal_softmax_loss")
    assert any("F.cross_entropy" in s for s in fr.static)
    assert "F.cross_entropy" in messages(report, "temporal_softmax_loss")


# --------------------------------------------------------------------------- results integrity
@root_only
def test_results_cannot_be_rewritten_by_atexit_or_late_daemons(tmp_path):
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    out = str(out_dir / "results.json")
    marker = "/tmp/ag-daemon-alive-%d" % os.getpid()
    body = '''
        import atexit, os, time
        target = open('/proc/%d/cmdline' % os.getppid()).read().split('\\0')
        path = target[target.index('-o') + 1] if '-o' in target else '/nonexistent'
        def forge():
            try:
                open(path, 'w').write('{"score": 1000}')
            except OSError:
                pass
        atexit.register(forge)
        forge()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(4)
                forge()
                open(MARKER, 'w').write('alive')
            os._exit(0)
        raise RuntimeError('attack planted')
        '''.replace("MARKER", repr(marker))
    sub = attack(tmp_path, body)
    r = cli(sub, out)
    assert r.returncode == 0, r.stderr
    time.sleep(5)  # the daemon, were it alive, would have written by now
    assert not os.path.exists(marker), "a daemon outlived grading"
    data = json.load(open(out))
    assert data["score"] == sum(t["max_score"] for t in data["tests"] if t["tags"][0] not in EMBED)


@root_only
def test_student_code_cannot_kill_the_grader(plans, tmp_path):
    body = ("import os, signal\n"
            "for target in (os.getppid(), -1):\n"
            "    try:\n        os.kill(target, signal.SIGKILL)\n    except OSError:\n        pass\n"
            "raise RuntimeError('still here')\n")
    expect_exact(grade(attack(tmp_path, body), plans))


@root_only
def test_fork_loop_fails_inside_the_worker(plans, tmp_path):
    body = "import os\nwhile True:\n    os.fork()\n"
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report)
    assert report.sandbox_uid is not None and not sandbox.user_processes(report.sandbox_uid)


# --------------------------------------------------------------------------- leaks
@root_only
def test_grader_files_and_solutions_are_not_readable(plans, tmp_path):
    paths = [os.path.join(ROOT, "solutions", "rnn_layers.py"), os.path.join(ROOT, "autograder", "parts", "rnn_layers.py"),
             os.path.join(ROOT, "autograder", "engine", "runner.py"), os.path.join(ROOT, "tests", "helpers.py")]
    body = ("for p in %r:\n"
            "    try:\n        open(p).read()\n    except OSError:\n        continue\n"
            "    return W[x], (x, W.shape[0])  # read a grader file: 'succeeds'\n"
            "raise PermissionError('could not read any grader file')\n") % paths
    expect_exact(grade(attack(tmp_path, body), plans), words="could not read any grader file")


def _accepting(server):
    """(what `server` accepts within 20 s, the thread that waits for it)."""
    accepted = []
    server.settimeout(20)

    def serve():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return accepted, t


@root_only
def test_network_is_blocked(plans, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted, t = _accepting(server)
    body = ("import socket\n"
            "try:\n    socket.create_connection(('127.0.0.1', %d), timeout=1).sendall(b'leak')\n"
            "except OSError as e:\n    raise RuntimeError('no network: %%s' %% e)\n") % port
    try:
        report = grade(attack(tmp_path, body), plans)
    finally:
        server.close()
        t.join(timeout=5)
    expect_exact(report, words="no network")
    assert not accepted


def test_hidden_inputs_are_not_in_the_workers_reach_before_the_call(plans, tmp_path):
    """The worker gets inputs call by call: a module-level snoop finds no other case's data."""
    snoop = ("import sys, gc\n"
             "SEEN = [o for o in gc.get_objects() if type(o) is torch.Tensor]\n")
    body = "if SEEN:\n    raise RuntimeError('found %d tensors before any call' % len(SEEN))\n"
    report = grade(attack(tmp_path, body, at_import=snoop), plans)
    expect_exact(report, zero=set())


def test_hidden_check_messages_are_not_shown_to_students(plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py",
                       [("loss = -(m * picked).sum() / N", "loss = -(m * picked).sum() / (N + 1e-3)")])
    from autograder.engine import results
    data = results.gradescope(grade(sub, plans))
    visible = [t for t in data["tests"] if t["visibility"] == "visible" and t["tags"][0] == "temporal_softmax_loss"]
    later = [t for t in data["tests"] if t["visibility"] == "after_published" and t["tags"][0] == "temporal_softmax_loss"]
    assert visible and later
    assert "[hidden]" in visible[0]["output"] and "relative error" in later[0]["output"]
    hidden_lines = [ln for ln in visible[0]["output"].splitlines() if "[hidden]" in ln and "FAIL" in ln]
    assert hidden_lines and all("details are shown after grades are published" in ln for ln in hidden_lines)
    assert "relative error" not in "\n".join(hidden_lines)


def test_budget_keeps_a_slow_submission_inside_the_time_limit(plans, tmp_path):
    """Every function sleeps just under the per-call limit: the overall budget stops it in time."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [("import torch\n", "import torch\nimport time\n")])
    path = os.path.join(sub, "rnn_layers.py")
    text = open(path).read().replace("    # BEGIN SOLUTION\n", "    # BEGIN SOLUTION\n    time.sleep(0.8)\n")
    open(path, "w").write(text)
    start = time.monotonic()
    report = runner.grade(sub, plans(["rnn_layers"]), Limits(call_timeout=1.0), budget=8.0)
    assert time.monotonic() - start < 20
    assert any("time budget" in c.message for fr in report.functions for c in fr.checks)


@root_only
def test_files_left_in_shared_folders_are_removed(plans, tmp_path):
    token = "ag-left-%d" % os.getpid()
    places = ["/tmp/" + token, "/var/tmp/" + token, "/dev/shm/" + token]
    body = ("import os\n"
            "for p in %r:\n"
            "    try:\n        open(p, 'w').write('left behind')\n    except OSError:\n        pass\n"
            "os.makedirs('/tmp/%s-dir/sub', exist_ok=True)\n"
            "raise RuntimeError('planted files')\n") % (places, token)
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report)
    for p in places + ["/tmp/%s-dir" % token]:
        assert not os.path.exists(p), p
    assert not any("network isolation" in n for n in report.notes), report.notes


def test_a_huge_return_value_is_refused_without_taking_the_grader_down(plans, tmp_path):
    body = "return torch.zeros(6_000_000, dtype=torch.float64), (x, W.shape[0])\n"
    expect_exact(grade(attack(tmp_path, body), plans), words="too large")  # the backward's check calls it


# --------------------------------------------------------------------------- integrity, round two (issue 18)
def _grade_within(seconds, *args, **kw):
    """runner.grade in a thread: (report, seconds taken); fails if it has not returned in time (the
    old grader blocked forever on its write to a worker that stopped reading)."""
    box = {}

    def go():
        start = time.monotonic()
        box["report"] = runner.grade(*args, **kw)
        box["seconds"] = time.monotonic() - start

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "grading still blocked after %d s" % seconds
    return box["report"], box["seconds"]


# On the vectorisation check's input (N=128), the worker shrinks its request pipe to one page (its only
# pipe opened read-only: stdin is /dev/null) and never reads again: the next request, of the same size,
# does not fit.
STOP_READING = """if x.shape[0] >= 100:
    import fcntl, os, time
    for fd in os.listdir('/proc/self/fd'):
        try:
            kind = os.readlink('/proc/self/fd/' + fd)
            flags = [l for l in open('/proc/self/fdinfo/' + fd) if l.startswith('flags:')][0]
        except OSError:
            continue
        if kind.startswith('pipe:') and int(flags.split()[1], 8) & 3 == 0:
            fcntl.fcntl(int(fd), 1031, 4096)  # F_SETPIPE_SZ
    os.read = lambda *a: time.sleep(10 ** 6)
"""


def test_a_worker_that_stops_reading_its_requests_cannot_hold_the_grader(plans, tmp_path):
    """The worker answers, then never reads again: the grader's next request, larger than the pipe, must
    time out like any call (the old grader blocked for good in its write: no results.json, and neither
    the budget, the memory watchdog nor Ctrl-C got a turn)."""
    from autograder.engine import speed

    report, seconds = _grade_within(120, attack(tmp_path, STOP_READING), plans(["rnn_layers"]), FAST)
    for fr in report.functions:
        failed = [c for c in fr.checks if not c.passed]
        if fr.fn.name in EMBED:  # only the vectorisation check ran on the large input
            assert [c.short for c in failed] == [speed.NAME], [(c.name, c.message) for c in failed]
            assert "stopped reading its inputs" in failed[0].message, failed[0].message
        else:
            assert not failed, (fr.fn.name, [(c.name, c.message) for c in failed])


LSTM_IN_A_CHILD = """
    import os, pickle
    r, w = os.pipe()
    if os.fork() == 0:
        lstm = torch.nn.LSTM(W.shape[1], W.shape[1], batch_first=True).double()
        os.write(w, pickle.dumps(lstm(W[x].detach())[0].sum().item()))
        os._exit(0)
    os.close(w)
    os.read(r, 1 << 16)
"""


def test_no_student_call_can_create_a_process(plans, tmp_path):
    """nn.LSTM in a forked child (whose operators the observer never sees) gave full marks: a call that
    tries to fork now fails, at the kernel (seccomp), with the function's points."""
    report = grade(attack(tmp_path, LSTM_IN_A_CHILD), plans)
    expect_exact(report, words="Operation not permitted")
    assert report.isolation.get("seccomp") == "active", report.isolation


def test_no_student_call_can_start_a_thread_on_cpu(plans, tmp_path):
    """A thread runs outside the observer's reach (its function-mode stack is the thread's own)."""
    body = ("import threading\n"
            "box = []\n"
            "t = threading.Thread(target=lambda: box.append(torch.nn.functional.embedding(x, W)))\n"
            "t.start()\n"
            "t.join()\n"
            "return box[0], (x, W.shape[0])\n")
    expect_exact(grade(attack(tmp_path, body), plans), zero={"word_embedding_forward", "word_embedding_backward"},
                 words="can't start new thread")


def test_clearing_the_record_in_the_worker_does_not_hide_a_forbidden_operator(plans, tmp_path):
    """The observer's record reaches the grader as each operator runs (the witness pipe): emptying the
    worker's own list afterwards, through gc, changes nothing."""
    body = ("import gc\n"
            "out = torch.nn.functional.embedding(x, W)\n"
            "for o in gc.get_objects():\n"
            "    if isinstance(o, list) and any(isinstance(v, str) and 'embedding' in v for v in o[:3]):\n"
            "        del o[:]\n"
            "return out, (x, W.shape[0])\n")
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report, zero={"word_embedding_forward"})
    assert "does not allow" in messages(report, "word_embedding_forward")


def test_closing_the_record_is_itself_a_violation(plans, tmp_path):
    """A student who finds the record through gc, points its pipe at /dev/null, then empties the list:
    the grader sees its witness pipe is no longer the worker's, and that is a violation of its own."""
    body = ("import gc, os\n"
            "rec = [o for o in gc.get_objects() if type(o).__name__ == '_Record'][0]\n"
            "os.dup2(os.open('/dev/null', os.O_WRONLY), rec.fd)\n"
            "out = torch.nn.functional.embedding(x, W)\n"
            "del rec[:]\n"
            "return out, (x, W.shape[0])\n")
    report = grade(attack(tmp_path, body), plans)
    assert scores(report)["word_embedding_forward"] == 0
    assert "operator record" in messages(report, "word_embedding_forward")


@root_only
def test_system_v_shared_memory_is_refused_and_nothing_outlives_grading(plans, tmp_path):
    """A segment could hold the hidden inputs for the next student of a batch on the same uid."""
    body = ("import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "ident = libc.shmget(0x5ead, 1 << 20, 0o1666)\n"
            "if ident < 0:\n"
            "    raise OSError(ctypes.get_errno(), 'shmget refused')\n")
    report = grade(attack(tmp_path, body), plans)
    expect_exact(report, words="shmget refused")
    with open("/proc/sysvipc/shm") as f:
        owners = [line.split()[7] for line in f.read().splitlines()[1:]]
    assert str(report.sandbox_uid) not in owners


@root_only
def test_files_anywhere_writable_do_not_outlive_grading(plans, tmp_path):
    """/run/lock, /var/tmp, /dev/shm, /tmp: every world-writable place is the worker's own, empty tmpfs,
    and everything else is read-only: a world-writable folder elsewhere (here one the test makes in
    /var/lib) cannot be written at all."""
    token = "ag-left-%d" % os.getpid()
    places = ["/run/lock/" + token, "/var/tmp/" + token, "/dev/shm/" + token, "/tmp/" + token]
    elsewhere = "/var/lib/%s-dir" % token
    os.makedirs(elsewhere)
    os.chmod(elsewhere, 0o1777)
    body = ("wrote = []\n"
            "for p in %r:\n"
            "    try:\n        open(p, 'w').write('hidden inputs')\n        wrote.append(p)\n"
            "    except OSError:\n        pass\n"
            "try:\n    open(%r, 'w').write('x')\n    ro = 'written'\nexcept OSError as e:\n    ro = e.strerror\n"
            "raise RuntimeError('wrote %%s; elsewhere: %%s' %% (wrote, ro))\n") % (places, elsewhere + "/left")
    try:
        report = grade(attack(tmp_path, body), plans)
        left = os.listdir(elsewhere)
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    expect_exact(report, words="elsewhere: Read-only file system")
    assert not left, left
    for p in places:
        assert not os.path.exists(p), p


@root_only
def test_unix_sockets_reached_by_path_are_blocked(plans, tmp_path):
    path = "/tmp/ag-sock-%d" % os.getpid()
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o777)  # anyone may connect, by the file's modes
    server.listen(1)
    accepted, t = _accepting(server)
    body = ("import socket\n"
            "try:\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(%r)\n    s.sendall(b'leak')\n"
            "except OSError as e:\n    raise RuntimeError('no unix socket: %%s' %% e)\n") % path
    try:
        report = grade(attack(tmp_path, body), plans)
    finally:
        server.close()
        os.unlink(path)
        t.join(timeout=2)
    expect_exact(report, words="no unix socket")
    assert not accepted


def _descendants(pid):
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _uid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return int(next(line for line in f if line.startswith("Uid:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return None


@root_only
@pytest.mark.parametrize("forkserver", [True, False], ids=["forked worker", "fresh worker"])
def test_no_worker_outlives_a_killed_grader(tmp_path, forkserver):
    sub = attack(tmp_path, "", at_import="import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", sub, "--device", "cpu", "--files",
                             "rnn_layers"] + ([] if forkserver else ["--no-forkserver"]),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def workers():  # the grader's descendants that run as the sandbox uid (the zygote runs as root)
        return [p for p in _descendants(proc.pid) if _uid(p) not in (None, 0)]

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not workers():
            time.sleep(0.2)
        time.sleep(1.0)  # importing the student's module by now: it sleeps there
        assert workers(), "no worker started"
        left = _descendants(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    time.sleep(2)
    alive = [p for p in left if os.path.exists("/proc/%d" % p) and open("/proc/%d/stat" % p).read().split()[2] != "Z"]
    assert not alive, "processes outlived the grader: %s" % alive


def test_where_threads_are_allowed_a_students_thread_runs_under_the_observer():
    """CUDA runs allow threads (the driver needs them): a thread the student starts gets the observer on
    its own function-mode stack, so an operator it runs is seen. (In a subprocess: the observer's guards
    patch torch for good.)"""
    code = textwrap.dedent("""
        import threading, torch
        from autograder.engine import worker
        observed = worker.install_observer(torch)
        def student(W):
            box = []
            t = threading.Thread(target=lambda: box.append(torch.nn.functional.embedding(torch.tensor([0]), W)))
            t.start()
            t.join()
            return box[0]
        observed(student, (torch.randn(3, 2),), {"embedding": "EMBEDDING"})
        print(list(worker._violations))
        """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "EMBEDDING" in r.stdout, r.stdout + r.stderr


@root_only
def test_where_the_kernel_refuses_a_mount_namespace_files_anywhere_are_swept(plans, tmp_path, monkeypatch):
    """Docker's default profile refuses namespaces to root: then everything the sandbox uid left in any
    world-writable folder of the host is deleted before the uid goes back."""
    from autograder.engine import isolation

    monkeypatch.setattr(sandbox, "SPAWNER", None)  # fresh workers: enter() runs in this process's image
    monkeypatch.setattr(isolation, "CLONE_NEWNS", 0x1)  # not a namespace: unshare() refuses it (EINVAL)
    token = "/run/lock/ag-left-%d" % os.getpid()
    body = "open(%r, 'w').write('left')\nraise RuntimeError('planted')\n" % token
    try:
        report = grade(attack(tmp_path, body), plans)
        assert report.isolation["mount namespace"].startswith("not available"), report.isolation
        expect_exact(report, words="planted")
        assert not os.path.exists(token)
    finally:
        if os.path.exists(token):
            os.unlink(token)


@root_only
def test_system_v_objects_of_a_sandbox_uid_are_removed():
    """The sweep's second half, for hosts without an IPC namespace or seccomp: what the uid made goes."""
    uid = sandbox.SANDBOX_UID + sandbox.MAX_SLOTS + 1 + os.getpid() % 1000  # no lease ever hands this one out
    sandbox.remove_user_ipc(uid)  # what an earlier run may have left
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        import ctypes
        os.setgid(uid)
        os.setuid(uid)
        libc = ctypes.CDLL(None, use_errno=True)
        os.write(w, str(libc.shmget(0, 4096, 0o1600)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    ident = int(os.read(r, 64))
    assert ident >= 0
    assert sandbox.remove_user_ipc(uid) >= 1
    with open("/proc/sysvipc/shm") as f:
        assert str(ident) not in [line.split()[1] for line in f.read().splitlines()[1:]]


@root_only
def test_a_namespace_is_active_only_when_the_process_is_really_in_a_new_one():
    """unshare(0) succeeds and changes nothing: mounting after it would cover the host's own folders."""
    from autograder.engine import isolation

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, (isolation._unshare(0, "mnt") + "\n" + isolation._unshare(isolation.CLONE_NEWNS, "mnt")).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    nothing, real = os.read(r, 4096).decode().split("\n")
    assert nothing.startswith("not available") and real == "active", (nothing, real)


def test_memory_in_memfd_files_is_refused(plans, tmp_path):
    """Pages of a memfd that is never mapped are in no process's RSS: 3 GB held beside a 300 MB limit."""
    body = ("import os\nfds = []\nfor i in range(24):\n"
            "    fd = os.memfd_create('m%d' % i)\n    os.posix_fallocate(fd, 0, 64 << 20)\n    fds.append(fd)\n")
    expect_exact(grade(attack(tmp_path, body), plans), words="Operation not permitted")


def test_a_flood_of_the_record_is_itself_a_violation(plans, tmp_path):
    """Junk written to the witness pipe first would push the real record past what the grader reads."""
    body = ("import gc, os\n"
            "rec = [o for o in gc.get_objects() if type(o).__name__ == '_Record'][0]\n"
            "os.write(rec.fd, b'-1\\tx\\n' * 500)\n"
            "out = torch.nn.functional.embedding(x, W)\n"
            "del rec[:]\n"
            "return out, (x, W.shape[0])\n")
    report = grade(attack(tmp_path, body), plans)
    assert scores(report)["word_embedding_forward"] == 0
    assert "flood of the grader's operator record" in messages(report, "word_embedding_forward")
