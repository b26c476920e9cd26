"""A worker that writes its own crafted response frame: it costs the attacked functions only,
and the grader allocates no more than the frame's size to refuse it.

Each submission's word_embedding_forward writes a frame straight onto the worker's response
pipe, then exits or blocks. Grading runs in a fresh interpreter, so that its peak resident
memory is the grader's own (not raised by earlier tests) and its workers are fresh ones (no
zygote left running by another test).
"""
import json
import os
import subprocess
import sys

from helpers import ROOT
from test_hostile import attack

from autograder.engine import wire

# Finds the worker's response pipe: a fresh worker gets its number as argv[2]; failing that (a
# forked worker), the one pipe above stderr that is open for writing only and is not the record's.
SEND = """import fcntl, os, stat, struct, sys

def _response_fd():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if (fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode)
                    and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY):
                fds.append(fd)
        except (OSError, ValueError):
            pass
    try:
        if int(sys.argv[2]) in fds:
            return int(sys.argv[2])
    except (IndexError, ValueError):
        pass
    import gc  # the other write-only pipe is the observer's record (worker._Record): found through gc
    fds = [fd for fd in fds if fd not in {o.fd for o in gc.get_objects() if type(o).__name__ == "_Record"}]
    assert len(fds) == 1, "cannot tell which pipe answers the grader: %s" % fds
    return fds[0]

def _send(header, payload):
    view = memoryview(struct.pack(">QQ", len(header), len(payload)) + header + payload)
    fd = _response_fd()
    while view:
        view = view[os.write(fd, view):]
"""

PAYLOAD = 8 << 20  # bytes the frame carries (a quarter of wire.MAX_PAYLOAD)
COPIES = 64  # entries that all point at them: 512 MB decoded by a decoder that trusts offsets

SAME_BYTES = """import json, os
entry = {"t": "tensor", "dtype": "uint8", "shape": [%d], "device": "cpu", "requires_grad": False,
         "off": 0, "len": %d}
_send(json.dumps({"t": "list", "items": [entry] * %d}).encode(), bytes(%d))
os._exit(0)
""" % (PAYLOAD, PAYLOAD, COPIES, PAYLOAD)

DEEP = """import time
_send(b'{"t": "list", "items": [' * 100000 + b"]}" * 100000, b"")
time.sleep(60)  # blocks: only the grader's own verdict on the frame ends this call
"""

# Run in a fresh interpreter: grade, report the growth of peak memory and whether the scores are
# exactly those test_hostile expects (0 for the two word-embedding functions, full marks elsewhere).
# The peak is VmHWM, the high-water mark of this interpreter's own resident memory: ru_maxrss
# would start at what the parent (this pytest process) held when the child was started.
CHILD = """import json, sys
sys.path.insert(0, %r)
from helpers import plan_for_files
from test_hostile import expect_exact, grade
def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
plan = plan_for_files(["rnn_layers"])
before = peak_kb()
report = grade(sys.argv[1], lambda files: plan)
after = peak_kb()
try:
    expect_exact(report, words="the worker sent malformed data")
    wrong = None
except AssertionError as e:
    wrong = str(e)
print(json.dumps({"grew_mb": (after - before) / 1024, "wrong": wrong}))
"""


def expect_bounded(sub):
    """Grade `sub` in a fresh interpreter: it must finish, score exactly, and the grader's peak
    memory must grow by less than twice wire.MAX_PAYLOAD."""
    r = subprocess.run([sys.executable, "-c", CHILD % os.path.join(ROOT, "tests"), sub], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "the grading itself failed:\n%s" % r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    limit_mb = 2 * wire.MAX_PAYLOAD / 2 ** 20
    assert got["grew_mb"] < limit_mb, "the grader's peak memory grew by %d MB (limit %d MB)" % (got["grew_mb"], limit_mb)
    assert got["wrong"] is None, got["wrong"]


def test_entries_sharing_the_same_bytes_cost_only_the_attacked_functions(tmp_path):
    """Before: each of the 64 entries was copied out (512 MB for an 8 MB frame)."""
    expect_bounded(attack(tmp_path, SAME_BYTES, at_import=SEND))


def test_a_header_nested_100k_deep_costs_only_the_attacked_functions(tmp_path):
    """Before: json.loads raised RecursionError, which took the whole grading down."""
    expect_bounded(attack(tmp_path, DEEP, at_import=SEND))
