"""static.py: the AST scan of a student file, and how its findings are attached to the report.

tests/test_static.py already lists every way into the worker that review_findings reports; this file
adds the other half of each contract: findings() on each forbidden API (label, line, enclosing
function) and on the look-alikes it must leave alone (a student's own `self.lstm`, words in strings
and comments, requires_grad=False), review_findings on ordinary code, and attach(), which routes
each finding to its function's result, to the notes, or to the instructor-only review.
"""
import textwrap
from types import SimpleNamespace

import pytest

from autograder.engine import static
from autograder.engine.submission import FileStatus


def findings(code):
    return static.findings(textwrap.dedent(code))


def labels(code):
    return [label for _, _, label in findings(code)]


# --------------------------------------------------------------------------- findings: each forbidden API
@pytest.mark.parametrize("code,label", [
    ("loss.backward()\n", "autograd (.backward)"),
    ("g = torch.autograd.grad(y, x)\n", "torch.autograd"),
    ("x.requires_grad_()\n", "autograd (requires_grad_)"),
    ("m = torch.nn.RNN(3, 4)\n", "torch.nn.RNN"),
    ("m = nn.LSTM(3, 4)\n", "torch.nn.LSTM"),
    ("m = nn.GRUCell(3, 4)\n", "torch.nn.GRUCell"),
    ("m = nn.MultiheadAttention(4, 2)\n", "torch.nn.MultiheadAttention"),
    ("y = F.scaled_dot_product_attention(q, k, v)\n", "F.scaled_dot_product_attention"),
    ("l = F.cross_entropy(s, y)\n", "F.cross_entropy"),
    ("e = nn.Embedding(10, 3)\n", "torch.nn.Embedding"),
    ("torch.nn.utils.clip_grad_norm_(ps, 1.0)\n", "torch.nn.utils.clip_grad_norm_"),
    ("importlib.reload(torch)\n", "importlib.reload"),
    ("y = F.embedding(x, W)\n", "F.embedding / torch.embedding"),
    ("y = torch.nn.functional.embedding(x, W)\n", "F.embedding / torch.embedding"),
    ("y = torch.embedding(W, x)\n", "F.embedding / torch.embedding"),
    ("h = torch.lstm_cell(x, hx, w1, w2)\n", "torch.lstm_cell"),
    ("h = torch.rnn_tanh(x, h0, ps, True, 1, 0.0, False, False, True)\n", "torch.rnn_tanh"),
    ("g = torch.func.grad(f)\n", "torch.func"),
    ("from torch.nn import LSTM\n", "torch.nn.LSTM"),
    ("from torch.nn.functional import embedding\n", "F.embedding"),
    ("from torch.autograd import grad\n", "torch.autograd"),
    ("from torch.func import vjp\n", "torch.func"),
    ("import torch.autograd.functional\n", "torch.autograd"),
    ("w = torch.zeros(3, requires_grad=True)\n", "autograd (requires_grad=True)"),
    ("w = torch.zeros(3, requires_grad=flag)\n", "autograd (requires_grad=True)"),
])
def test_each_forbidden_api_is_named_with_its_label(code, label):
    assert findings(code) == [(None, 1, label)]


@pytest.mark.parametrize("code", [
    "y = self.embedding(x)\n",  # a student's own attribute named like a torch function
    "h = self.lstm(x)\nh = model.gru(x)\nh = layer.rnn_tanh(x)\n",
    "f = self.func(x)\n",
    "w = torch.zeros(3, requires_grad=False)\n",
    "# never call .backward() or nn.LSTM here\nx = 1\n",
    "msg = 'torch.nn.LSTM and F.cross_entropy are not allowed'\n",
    "def backward(dout, cache):\n    return dout\n",  # a function named backward is no call of it
    "from torch.nn.functional import softmax, tanh\n",
    "import torch.nn.functional as F\ny = F.softmax(x, 1) @ W\n",
], ids=["self.embedding", "own lstm/gru/rnn attributes", "self.func", "requires_grad=False", "a comment",
        "a string", "a function named backward", "allowed imports", "allowed calls"])
def test_look_alikes_of_forbidden_apis_are_left_alone(code):
    assert findings(code) == []


def test_each_finding_has_its_line_and_innermost_function():
    code = """\
        import torch


        class Model:
            def forward(self, x):
                def step(h):
                    return torch.nn.functional.embedding(h, self.W)
                return step(x).backward()


        async def later(x):
            x.requires_grad_()


        after = torch.nn.GRU(2, 2)
        """
    assert findings(code) == [
        ("step", 7, "F.embedding / torch.embedding"),
        ("forward", 8, "autograd (.backward)"),
        ("later", 12, "autograd (requires_grad_)"),
        (None, 15, "torch.nn.GRU"),
    ]


def test_two_apis_on_one_line_are_both_reported_in_label_order():
    got = findings("y = torch.nn.LSTM(2, 3), x.backward()\n")
    assert got == [(None, 1, "autograd (.backward)"), (None, 1, "torch.nn.LSTM")]


def test_the_same_api_twice_on_a_line_is_reported_once():
    assert findings("a, b = x.backward(), y.backward()\n") == [(None, 1, "autograd (.backward)")]


@pytest.mark.parametrize("source", ["def f(:\n", "x = 1\0\n", "", "   \n", "x = (\n"],
                         ids=["syntax error", "NUL byte", "empty", "blank", "unclosed bracket"])
def test_findings_of_unparsable_or_empty_source_are_empty(source):
    assert static.findings(source) == []


def test_unicode_source_is_scanned():
    code = "# café, naïve, 日本語\ndef größe(x):\n    s = 'ünïcödé'\n    return x.backward()\n"
    assert static.findings(code) == [("größe", 4, "autograd (.backward)")]


@pytest.mark.parametrize("name,label", [("lstm", "torch.lstm"), ("gru_cell", "torch.gru_cell"), ("func", "torch.func")])
def test_a_torch_op_imported_by_name_gets_its_own_label(name, label):
    assert labels("from torch import %s\n" % name) == [label]


def test_every_forbidden_name_of_one_import_is_reported():
    assert labels("from torch.nn import LSTM, GRU\n") == ["torch.nn.GRU", "torch.nn.LSTM"]


# --------------------------------------------------------------------------- review_findings
REALISTIC = '''\
"""An RNN layer, as a student writes it."""
import math
import os

import torch
from . import helpers


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step."""
    next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    hs, h = [], h0
    for t in range(T):
        h, _ = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    path = os.path.join("a", "b")
    return torch.stack(hs, dim=1), math.sqrt(4.0), path
'''


def test_an_ordinary_solution_gives_no_review_line():
    assert static.review_findings(REALISTIC) == []


def test_a_relative_import_of_a_name_like_gc_is_the_students_own_file():
    assert static.review_findings("from . import gc\nfrom .threading import pool\n") == []


def test_review_lines_are_sorted_and_not_repeated():
    code = "import gc\nx = eval('1') + eval('2')\nimport ctypes\n"
    got = static.review_findings(code)
    assert got == sorted(set(got))
    assert got == [(1, "an import of gc"), (2, "eval"), (3, "an import of ctypes")]


def test_getattr_with_a_computed_name_is_reported_on_torch_only():
    assert static.review_findings("import torch\nf = getattr(torch, name)\n") == [
        (2, "getattr on torch with a computed name")]
    assert static.review_findings("f = getattr(obj, name)\n") == []


def test_review_of_a_syntax_error_is_empty_not_an_exception():
    assert static.review_findings("def f(:\n    import gc\n") == []


# --------------------------------------------------------------------------- attach
SOURCE = """\
import torch

def rnn_step_forward(x, h):
    return torch.nn.RNN(2, 2)

def my_helper(x):
    return x.backward()

import gc
"""


def graded(name, file):
    """What attach reads of a FunctionResult: its function's name and file, and its static list."""
    return SimpleNamespace(fn=SimpleNamespace(name=name, file=file), static=[])


@pytest.fixture
def submission(tmp_path):
    path = tmp_path / "rnn_layers.py"
    path.write_text(SOURCE, encoding="utf-8")
    return {"rnn_layers": FileStatus("rnn_layers", str(path), None)}


def test_attach_gives_a_graded_functions_finding_to_that_function(submission):
    results = {"rnn_step_forward": graded("rnn_step_forward", "rnn_layers")}
    static.attach(submission, results)
    assert results["rnn_step_forward"].static == [
        "rnn_layers.py line 4 names torch.nn.RNN, which this assignment does not allow"]


def test_attach_turns_findings_outside_graded_functions_into_notes(submission):
    results = {"rnn_step_forward": graded("rnn_step_forward", "rnn_layers")}
    notes, _ = static.attach(submission, results)
    assert notes == ["static check: rnn_layers.py line 7 names autograd (.backward), which this assignment "
                     "does not allow"]


def test_attach_sends_review_lines_to_the_instructor_list(submission):
    notes, review = static.attach(submission, {})
    assert review == ["rnn_layers.py line 9: an import of gc"]
    assert not any("gc" in n for n in notes)


def test_attach_matches_functions_by_file_as_well_as_name(submission):
    other_file = graded("rnn_step_forward", "lstm_layers")  # same name, another file
    notes, _ = static.attach(submission, {"rnn_step_forward": other_file})
    assert other_file.static == []
    assert any("line 4 names torch.nn.RNN" in n for n in notes)


def test_attach_skips_files_that_were_not_found_or_failed_vetting(tmp_path):
    statuses = {"rnn_layers": FileStatus("rnn_layers", str(tmp_path / "absent.py"), "rnn_layers.py is empty"),
                "lstm_layers": FileStatus("lstm_layers", None, "lstm_layers.py was not found")}
    assert static.attach(statuses, {}) == ([], [])  # the absent path is never opened
