"""The static scan (autograder/engine/static.py), tested directly, and its instructor-only review end to end.

static.findings lists the lines that name a forbidden API (shown to the student); static.review_findings
lists the lines an instructor should read: side roads to torch's operators, and every way into the
worker's own objects or out of the observer's sight (gc, frames, ctypes, threads, other processes,
signals). Both are pure functions of the source text, AST only, and never raise.
"""
import ast
import glob
import os
import textwrap

import pytest
from helpers import ASSIGNMENT, SOLUTIONS, full, make_variant, scores

from autograder.engine import results, runner, static
from autograder.engine.sandbox import Limits

HEAD = '"""A student file."""\nimport torch\n\n'  # the case's first line is line 4
FIRST = HEAD.count("\n") + 1


def review(code):
    return static.review_findings(HEAD + textwrap.dedent(code))


# name -> (code, (line within the code, label)). The scan before this file existed missed every one.
CASES = {
    # modules that reach the worker's objects or run code where the observer does not look
    "import gc": ("import gc\n", (0, "an import of gc")),
    "import inspect as": ("import inspect as ins\n", (0, "an import of inspect")),
    "from ctypes import": ("from ctypes import CDLL\n", (0, "an import of ctypes")),
    "import threading, _thread": ("import threading, _thread\n", (0, "an import of threading, _thread")),
    "from multiprocessing import": ("from multiprocessing import Process\n", (0, "an import of multiprocessing")),
    "import concurrent.futures": ("import concurrent.futures\n", (0, "an import of concurrent.futures")),
    "from concurrent import futures": ("from concurrent import futures\n", (0, "an import of concurrent.futures")),
    "import subprocess": ("x = 1\nimport subprocess\n", (1, "an import of subprocess")),
    "from signal import": ("from signal import signal, SIGALRM\n", (0, "an import of signal")),
    "import pty": ("import pty\n", (0, "an import of pty")),
    "import torch.multiprocessing": ("import torch.multiprocessing as mp\n", (0, "an import of torch.multiprocessing")),
    "import in a function": ("def f(x):\n    import gc\n    return x\n", (1, "an import of gc")),
    # the objects themselves
    "gc.get_objects": ("import gc\nobjs = gc.get_objects()\n", (1, "gc.get_objects (every object in the worker)")),
    "gc.get_referrers": ("import gc\ngc.get_referrers(f)\n", (1, "gc.get_referrers (every object in the worker)")),
    "inspect.currentframe": ("import inspect\nf = inspect.currentframe()\n", (1, "inspect.currentframe (frames)")),
    # sys: frames and tracing, the worker's modules
    "sys._getframe": ("import sys\nf = sys._getframe(1)\n", (1, "sys._getframe (frames and tracing)")),
    "sys._current_frames": ("import sys\nsys._current_frames()\n", (1, "sys._current_frames (frames and tracing)")),
    "sys.settrace": ("import sys\nsys.settrace(None)\n", (1, "sys.settrace (frames and tracing)")),
    "sys.setprofile": ("import sys\nsys.setprofile(None)\n", (1, "sys.setprofile (frames and tracing)")),
    "from sys import _getframe": ("from sys import _getframe\n", (0, "sys._getframe (frames and tracing)")),
    "sys.modules": ("import sys\nw = sys.modules['autograder.engine.worker']\n", (1, "sys.modules")),
    "threading.settrace": ("import threading\nthreading.settrace(f)\n", (1, "frames and tracing (.settrace)")),
    # frames, tracebacks, generators and coroutines
    "f_back": ("def f(frame):\n    return frame.f_back\n", (1, "frame access (.f_back)")),
    "f_locals": ("y = frame.f_locals['W']\n", (0, "frame access (.f_locals)")),
    "f_globals": ("g = frame.f_globals\n", (0, "frame access (.f_globals)")),
    "f_code": ("c = frame.f_code\n", (0, "frame access (.f_code)")),
    "tb_frame": ("try:\n    1 / 0\nexcept Exception as e:\n    fr = tb.tb_frame\n", (3, "frame access (.tb_frame)")),
    "__traceback__": ("try:\n    1 / 0\nexcept Exception as e:\n    tb = e.__traceback__\n",
                      (3, "frame access (.__traceback__)")),
    "gi_frame": ("fr = (i for i in range(3)).gi_frame\n", (0, "frame access (.gi_frame)")),
    "cr_frame": ("fr = coro.cr_frame\n", (0, "frame access (.cr_frame)")),
    "ag_frame": ("fr = agen.ag_frame\n", (0, "frame access (.ag_frame)")),
    # other code's functions and classes
    "__closure__": ("c = fn.__closure__\n", (0, "another object's internals (.__closure__)")),
    "cell_contents": ("v = c[0].cell_contents\n", (0, "another object's internals (.cell_contents)")),
    "__globals__": ("g = torch.nn.functional.linear.__globals__\n", (0, "another object's internals (.__globals__)")),
    "__code__": ("fn.__code__ = other.__code__\n", (0, "another object's internals (.__code__)")),
    "__subclasses__": ("for c in object.__subclasses__():\n    pass\n",
                       (0, "another object's internals (.__subclasses__)")),
    "__wrapped__": ("emb = guarded.__wrapped__\n", (0, "another object's internals (.__wrapped__)")),
    "__self__": ("obs = hook.__self__\n", (0, "another object's internals (.__self__)")),
    "__builtins__ name": ("imp = __builtins__['__import__']\n", (0, "__builtins__")),
    "__builtins__ attribute": ("b = fn.__builtins__\n", (0, "__builtins__")),
    # processes and signals
    "os.fork": ("import os\nif os.fork() == 0:\n    pass\n", (1, "os.fork (processes)")),
    "os.forkpty": ("import os\nos.forkpty()\n", (1, "os.forkpty (processes)")),
    "os.posix_spawn": ("import os\nos.posix_spawn('/bin/true', ['true'], {})\n", (1, "os.posix_spawn (processes)")),
    "os.system": ("import os\nos.system('true')\n", (1, "os.system (processes)")),
    "os.execv": ("import os\nos.execv('/bin/true', ['true'])\n", (1, "os.execv (processes)")),
    "os.execvpe": ("import os\nos.execvpe('true', ['true'], {})\n", (1, "os.execvpe (processes)")),
    "os.spawnl": ("import os\nos.spawnl(os.P_WAIT, '/bin/true', 'true')\n", (1, "os.spawnl (processes)")),
    "os.kill": ("import os\nos.kill(os.getppid(), 9)\n", (1, "os.kill (processes)")),
    "os.popen": ("import os\nos.popen('true')\n", (1, "os.popen (processes)")),
    "os as o": ("import os as o\no.fork()\n", (1, "os.fork (processes)")),
    "o = os": ("import os\no = os\no.system('x')\n", (2, "os.system (processes)")),
    "from os import fork": ("from os import fork, system as s\n", (0, "os.fork (processes)")),
    "from os import system": ("from os import fork, system as s\n", (0, "os.system (processes)")),
    "import posix": ("import posix\nposix.fork()\n", (1, "posix.fork (processes)")),
    "fork on anything": ("m.fork()\n", (0, "processes (.fork)")),
    # star imports that hand these names over unnamed
    "from os import *": ("from os import *\nfork()\n", (0, "from os import *")),
    "from sys import *": ("from sys import *\n", (0, "from sys import *")),
    "from gc import *": ("from gc import *\n", (0, "from gc import *")),
    "from threading import *": ("from threading import *\n", (0, "from threading import *")),
    # imports by a constant name
    "__import__('gc')": ("g = __import__('gc')\n", (0, "__import__ of gc")),
    "__import__('os').fork()": ("__import__('os').fork()\n", (0, "os.fork (processes)")),
    "import_module('ctypes')": ("import importlib\nc = importlib.import_module('ctypes')\n",
                                (1, "importlib.import_module of ctypes")),
    "import_module alias": ("from importlib import import_module as im\nim('subprocess.run')\n",
                            (1, "importlib.import_module of subprocess.run")),
    "builtins.__import__": ("import builtins\nbuiltins.__import__('gc')\n", (1, "__import__ of gc")),
    # torch under another name
    "import torch as t": ("import torch as t\nf = t._C._VariableFunctions.embedding\n", (1, "torch._C")),
    # attributes by a constant name
    "getattr f_back": ("f = getattr(frame, 'f_back')\n", (0, "frame access (.f_back)")),
    "getattr os fork": ("import os\ngetattr(os, 'system')('true')\n", (1, "os.system (processes)")),
    "__getattribute__": ("frame.__getattribute__('f_locals')\n", (0, "frame access (.f_locals)")),
    "string name": ("import operator\nget = operator.attrgetter('f_globals')\n", (1, "frame access (.f_globals)")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_review_reports_each_way_into_the_worker_with_its_line(case):
    code, (offset, label) = CASES[case]
    got = review(code)
    assert (FIRST + offset, label) in got, got


def test_a_case_that_reaches_many_ways_reports_every_line():
    code = """
    import gc, sys
    def word_embedding_forward(x, W):
        for o in gc.get_objects():
            pass
        f = sys._getframe()
        while f is not None:
            f = f.f_back
        return W[x], None
    """
    got = review(code)
    assert [line for line, _ in got] == [FIRST + 1, FIRST + 3, FIRST + 5, FIRST + 7], got


def test_the_side_roads_to_torch_are_still_reported():
    code = """
    import importlib
    a = torch._C._VariableFunctions.embedding
    b = torch.ops.aten.lstm
    c = torch._VF.lstm
    d = getattr(torch, "emb" + "edding")
    e = eval("1")
    exec("pass")
    compile("1", "f", "eval")
    g = __import__("torch")
    """
    got = review(code)
    want = [(1, "an import of importlib"), (2, "torch._C"), (3, "torch.ops"), (4, "torch._VF"),
            (5, "getattr on torch with a computed name"), (6, "eval"), (7, "exec"), (8, "compile"),
            (9, "__import__")]
    assert got == [(FIRST + line, label) for line, label in want], got


@pytest.mark.parametrize("code", [
    "y = x.sum(dim=1).float().view(2, 3).T\n",
    "def f(model):\n    for m in model.modules():\n        m.train(False)\n    return model.state_dict()\n",
    "import math\nimport os\np = os.path.join('a', 'b')\nn = os.cpu_count()\n",
    "import sys\nprint('x', file=sys.stderr)\n",
    "out = torch.stack([h.clone() for h in hs], dim=1)\n",
    "def step(self):\n    return self.system\n",
    "from scipy import signal\n",
    "doc = 'f_back is a frame attribute'\n",
], ids=["tensor methods", "module methods", "os.path", "sys.stderr", "torch.stack", "self.system", "scipy.signal",
        "a sentence naming f_back"])
def test_ordinary_code_gives_no_review_line(code):
    assert review(code) == []


@pytest.mark.parametrize("folder", [SOLUTIONS, ASSIGNMENT], ids=["solutions", "stubs"])
def test_reference_solutions_and_stubs_give_no_line(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.py")))
    assert files
    for path in files:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        assert static.review_findings(source) == [], path
        assert static.findings(source) == [], path


# --------------------------------------------------------------------------- findings (shown to students)
def test_findings_name_the_function_and_line_of_each_forbidden_api():
    code = textwrap.dedent("""\
        import torch
        import torch.nn.functional as F
        from torch.autograd import grad

        def outer(x, W):
            def inner(y):
                return F.embedding(y, W)
            loss = F.cross_entropy(x, x)
            return inner(x), loss

        def other(x):
            x.requires_grad_()
            return torch.nn.LSTM(2, 3), torch.lstm

        y = torch.zeros(2, requires_grad=True)
        """)
    assert static.findings(code) == [
        (None, 3, "torch.autograd"),
        ("inner", 7, "F.embedding / torch.embedding"),
        ("outer", 8, "F.cross_entropy"),
        ("other", 12, "autograd (requires_grad_)"),
        ("other", 13, "torch.lstm"),
        ("other", 13, "torch.nn.LSTM"),
        (None, 15, "autograd (requires_grad=True)"),
    ]


def test_findings_leave_allowed_code_alone():
    code = "import torch\ndef f(x, W):\n    return W[x], torch.tanh(x), torch.softmax(x, 1), x @ W, x.detach()\n"
    assert static.findings(code) == []
    assert static.findings("y = torch.zeros(2, requires_grad=False)\n") == []


# --------------------------------------------------------------------------- any input
DEEP = {
    "unary minus": "x = " + "-" * 5000 + "1\n",
    "sum": "x = " + "a + " * 5000 + "1\n",
    "attribute chain": "x = os" + ".fork" * 5000 + "\n",
    "call chain": "x = f" + "()" * 5000 + "\n",
    "subscript chain": "x = a" + "[0]" * 5000 + "\n",
    "parentheses": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
}


@pytest.mark.parametrize("shape", list(DEEP))
def test_a_5000_deep_expression_does_not_raise(shape):
    source = DEEP[shape]
    got, found = static.review_findings(source), static.findings(source)  # must not raise
    assert isinstance(found, list)
    try:
        ast.parse(source)
    except RecursionError:  # this Python cannot parse it: the instructor is told, once
        assert got == [(1, static.TOO_DEEP)], got
    except SyntaxError:  # "too many nested parentheses": the file does not import either
        assert got == []
    else:
        assert all(isinstance(line, int) and isinstance(label, str) for line, label in got), got


@pytest.mark.parametrize("source", ["def (:\n", "x = 1\0\n", b"import gc\n", "", "\n" * 1000, "\ufeffimport gc\n"],
                         ids=["syntax error", "null byte", "bytes", "empty", "blank lines", "BOM"])
def test_odd_input_does_not_raise(source):
    assert isinstance(static.review_findings(source), list)
    assert isinstance(static.findings(source), list)


# --------------------------------------------------------------------------- end to end
ANCHOR = "    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n"


def test_gc_in_a_graded_function_reaches_the_instructor_only(plans, tmp_path):
    """A submission that walks gc.get_objects() is not zeroed for it (the observer decides scores) and
    the instructor gets the lines, in the report and in results.json's hidden entry only."""
    body = "    # BEGIN SOLUTION\n    import gc\n    n = len(gc.get_objects())\n    out = W[x]\n"
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [(ANCHOR, body)])
    with open(os.path.join(sub, "rnn_layers.py"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    line = lines.index("    import gc") + 1
    report = runner.grade(sub, plans(["rnn_layers"]), Limits(call_timeout=10.0))
    got, best = scores(report), full(report)
    assert got["word_embedding_forward"] > 0  # walking every object is slow: "vectorised" may fail, no more
    assert {k: v for k, v in got.items() if k != "word_embedding_forward"} == \
        {k: v for k, v in best.items() if k != "word_embedding_forward"}
    assert "rnn_layers.py line %d: an import of gc" % line in report.review, report.review
    assert "rnn_layers.py line %d: gc.get_objects (every object in the worker)" % (line + 1) in report.review
    data = results.gradescope(report)
    entry = [t for t in data["tests"] if t["tags"] == ["static-review"]]
    assert entry and entry[0]["visibility"] == "hidden", data["tests"]
    assert "line %d: an import of gc" % line in entry[0]["output"], entry[0]["output"]
    shown = [t for t in data["tests"] if t["visibility"] != "hidden"]
    assert "gc.get_objects" not in str(shown) and "an import of gc" not in str(shown)
