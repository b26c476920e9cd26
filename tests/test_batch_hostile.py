"""One student of a batch cannot leave anything for the next one (issue 18, items 5 and 6).

grade-batch gives every student the same hidden inputs, and with one job the students are graded one
after the other, each under a sandbox uid lease that the next one usually takes again. Student A
stores what its call received everywhere it can (System V shared memory, POSIX shared memory, every
world-writable folder); student B, graded next, looks for it, and for the class folder and the
batch's output folder. B's function gets full marks only if it finds nothing.
"""
import io
import os

import pytest
from helpers import make_variant

from autograder.verbs.batch import run as batch

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox uids)")
FUNCTIONS = ["word_embedding_forward"]
ANCHOR = "    # BEGIN SOLUTION\n    out = W[x]"
PLACES = ["/dev/shm/ag-leak", "/run/lock/ag-leak", "/tmp/ag-leak", "/var/tmp/ag-leak"]

WRITER = """
    import ctypes
    data = x.numpy().tobytes()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    ident = libc.shmget(0x5ead, 1 << 16, 0o1666)
    if ident >= 0:
        ctypes.memmove(libc.shmat(ident, None, 0), data, len(data))
    for p in %r:
        try:
            open(p, 'wb').write(data)
        except OSError:
            pass
"""

READER = """
    import ctypes, os
    found = []
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmget(0x5ead, 0, 0) >= 0:
        found.append('System V shared memory')
    found += [p for p in %r if os.path.exists(p)]
    for folder in %r:
        try:
            os.listdir(folder)
            found.append(folder)
        except OSError:
            pass
    if found:
        raise RuntimeError('left for me: %%s' %% found)
"""


def test_nothing_a_student_leaves_reaches_the_next_one(tmp_path):
    klass, out = tmp_path / "class", tmp_path / "out"
    klass.mkdir()
    make_variant(str(klass / "a_writer"), "rnn_layers.py", [(ANCHOR, WRITER % PLACES + ANCHOR)])
    reader = READER % (PLACES, [str(klass), str(out)])
    make_variant(str(klass / "b_reader"), "rnn_layers.py", [(ANCHOR, reader + ANCHOR)])
    opts = batch.Options(input=str(klass), output=str(out), jobs=1, device="cpu", functions=FUNCTIONS,
                         no_instructor_tests=True)
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        code = batch.run(opts, stdout, stderr)
        assert code == 0, stdout.getvalue() + stderr.getvalue()
        record = batch.batchreport.load_record(str(out), "b_reader")
        fn = record["functions"][0]
        assert fn["score"] == fn["max_score"], fn["first_failure"]
    finally:
        for p in PLACES:
            if os.path.exists(p):
                os.unlink(p)
