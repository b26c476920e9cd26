"""Hostile (and careless) NumPy-track submissions: each test is an attack that worked against the kit, and
asserts what the grader should do instead.

- torch run outside the operator observer on the NumPy track: TorchScript (its interpreter dispatches ATen
  operators from C++, past any TorchFunctionMode: autograd included), and torch.overrides'
  _pop_mode_temporarily (pops the observer and pushes it back, so the end-of-call stack check passes);
- TorchScript autograd on the torch track (no guard sees a backward run from TorchScript's C++);
- an input modified in place by changing the array object itself (x.shape = ...): the tensor behind it is
  unchanged, so inputs_after shows nothing;
- submission.relocate taking a file named like an importable module (numpy.py, autograder.py): the
  shadowing rule is bypassed and the student reads "numpy.py has no function ...";
- NumPy students told to "write it with tensor operations" when a function uses something forbidden;
- an array of a dtype the wire format does not carry reported as "should be a NumPy array, got
  numpy.ndarray(...)";
- check.py's line count (worker.count_lines) missing a loop over the batch that runs in library code
  (np.apply_along_axis) or in exec'd code.
"""
import os

import numpy as np
import pytest
from helpers import NP_SOLUTIONS, SOLUTIONS, copy_solutions, full, make_variant, messages, scores

from autograder import registry
from autograder.engine import runner, worker


# Attacks that still work, kept as tests of what the grader should do: each xfail is strict, so that it fails
# (and must lose its mark) the day its hole is closed.
def _open(why):
    return pytest.mark.xfail(strict=True, reason="open: %s (the attack still works)" % why)


def _plan(names, track="numpy"):
    return registry.plan(registry.select(names=names), device="cpu", seed=1, track=track)


def _numpy_variant(tmp_path, file, edits):
    return make_variant(str(tmp_path / "sub"), file, edits, src=NP_SOLUTIONS)


# --------------------------------------------------------------------------- torch past the observer
# rnn_step_backward computed by torch's autograd, run from TorchScript: the cache carries b, the backward
# compiles (at import, where nothing is observed) a function that builds the graph and calls backward.
_JIT_BACKWARD = '''
import torch
_SRC = """
def bw(x: Tensor, prev_h: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor, d: Tensor, outs: List[Tensor]):
    ins = [x.detach().clone().REQ(), prev_h.detach().clone().REQ(), Wx.detach().clone().REQ(),
           Wh.detach().clone().REQ(), b.detach().clone().REQ()]
    h = torch.tanh(ins[0] @ ins[2] + ins[1] @ ins[3] + ins[4])
    h.BACK(d)
    for i in range(5):
        g = ins[i].grad
        if g is not None:
            outs[i].copy_(g)
    return h
""".replace("REQ", "requires_" + "grad_").replace("BACK", "back" + "ward")
_cu = torch.jit.CompilationUnit(_SRC)
'''


def _without(text, start, end):
    i, j = text.index(start), text.index(end)
    return text[:i] + text[j:]


@_open("TorchScript runs its operators past the function-mode observer")
def test_torchscript_autograd_is_seen_on_the_numpy_track(tmp_path):
    """Would catch: TorchScript's operators (autograd's backward included) passing the NumPy track's observer."""
    sub = copy_solutions(str(tmp_path / "sub"), NP_SOLUTIONS)
    path = os.path.join(sub, "rnn_layers.py")
    with open(path) as f:
        text = f.read()
    text = _without(text, "def rnn_step_backward", "def rnn_forward")
    text = text.replace("cache = (x, prev_h, Wx, Wh, next_h)", "cache = (x, prev_h, Wx, Wh, next_h, b)")
    text += _JIT_BACKWARD + '''
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h, b = cache
    outs = [np.empty_like(x), np.empty_like(prev_h), np.empty_like(Wx), np.empty_like(Wh), np.empty_like(b)]
    T = torch.from_numpy
    _cu.bw(T(x), T(prev_h), T(Wx), T(Wh), T(b), T(dnext_h), [T(o) for o in outs])
    return tuple(outs)
'''
    with open(path, "w") as f:
        f.write(text)
    report = runner.grade(sub, _plan(["rnn_step_backward"]))
    assert scores(report)["rnn_step_backward"] == 0, messages(report, "rnn_step_backward")
    assert worker.TORCH_IN_NUMPY in messages(report, "rnn_step_backward")


@_open("torch.overrides._pop_mode_temporarily takes the observer off and puts it back")
def test_observer_popped_and_pushed_back_is_seen_on_the_numpy_track(tmp_path):
    """torch.overrides._pop_mode_temporarily() takes the observer off torch's function-mode stack and puts it
    back: the torch operators run in between must still cost the function its points. Would catch: an observer
    that one public torch helper switches off unseen."""
    sub = _numpy_variant(tmp_path, "rnn_layers.py", [(
        "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)\n",
        "    import torch\n"
        "    from torch.overrides import _pop_mode_temporarily\n"
        "    with _pop_mode_temporarily():\n"
        "        next_h = torch.tanh(torch.from_numpy(x @ Wx + prev_h @ Wh + b)).numpy()\n")])
    report = runner.grade(sub, _plan(["rnn_step_forward"]))
    assert scores(report)["rnn_step_forward"] == 0, messages(report, "rnn_step_forward")


@_open("a backward run from TorchScript's C++ passes every guard")
def test_torchscript_autograd_is_seen_on_the_torch_track(tmp_path):
    """The same backward on the torch track: autograd run from TorchScript's C++ passes the observer, the
    guards on Tensor.backward / torch.autograd.grad and the engine guard (pre-existing: not the NumPy track's
    doing, found while checking that the torch track is unaffected)."""
    sub = copy_solutions(str(tmp_path / "sub"), SOLUTIONS)
    path = os.path.join(sub, "rnn_layers.py")
    with open(path) as f:
        text = f.read()
    text = _without(text, "def rnn_step_backward", "def rnn_forward")
    text = text.replace("cache = (x, prev_h, Wx, Wh, next_h)", "cache = (x, prev_h, Wx, Wh, next_h, b)")
    text += _JIT_BACKWARD + '''
def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h, b = cache
    outs = [torch.empty_like(x), torch.empty_like(prev_h), torch.empty_like(Wx), torch.empty_like(Wh),
            torch.empty_like(b)]
    _cu.bw(x, prev_h, Wx, Wh, b, dnext_h, outs)
    return tuple(outs)
'''
    with open(path, "w") as f:
        f.write(text)
    report = runner.grade(sub, _plan(["rnn_step_backward"], track="torch"))
    assert scores(report)["rnn_step_backward"] == 0, messages(report, "rnn_step_backward")


# --------------------------------------------------------------------------- in place, by the array object
def test_an_input_reshaped_in_place_is_seen(tmp_path):
    """x.shape = (N * T, D) changes the caller's array (a view of the grader's tensor, whose bytes and shape stay
    as they were): the function modified its input in place, as x.resize_(...) does on the torch track. Would
    catch: inputs_after built from the tensors alone."""
    sub = _numpy_variant(tmp_path, "rnn_layers.py", [(
        "    out = x @ w + b  # (N, T, M)\n",
        "    N, T, D = x.shape\n    x.shape = (N * T, D)\n    out = (x @ w + b).reshape(N, T, -1)\n")])
    report = runner.grade(sub, _plan(["temporal_affine_forward"]))
    assert scores(report)["temporal_affine_forward"] < full(report)["temporal_affine_forward"]
    assert "modified its input x in place" in messages(report, "temporal_affine_forward")


# --------------------------------------------------------------------------- relocate
def test_a_function_in_a_file_named_like_a_module_is_not_taken_from_it(tmp_path):
    """With no lstm_layers.py, relocate looked in numpy.py (and autograder.py, a kit name) and took them: the
    shadowing rule was bypassed (no "rename it" note; autograder.py copied into scratch) and numpy.py's
    functions failed with "numpy.py has no function lstm_step_forward" (the worker's numpy is NumPy). Would
    catch: relocate's candidates not vetted against importable_modules()."""
    with open(os.path.join(NP_SOLUTIONS, "lstm_layers.py")) as f:
        lstm = f.read()
    for name in ("numpy", "autograder"):
        sub = tmp_path / name
        copy_solutions(str(sub), NP_SOLUTIONS)
        os.remove(str(sub / "lstm_layers.py"))
        (sub / (name + ".py")).write_text(lstm)
        report = runner.grade(str(sub), _plan(["lstm_step_forward"]))
        text = messages(report, "lstm_step_forward")
        fr = report.functions[0]
        assert not any("found in %s.py" % name in n for n in fr.notes), fr.notes
        assert "has no function" not in text, text
        assert "lstm_layers.py was not found" in text, text
        assert any("in %s.py, which has the name of the module %s" % (name, name) in n and "rename" in n
                   for n in fr.notes), fr.notes


# --------------------------------------------------------------------------- words
def test_a_forbidden_use_is_told_in_numpy_words(tmp_path):
    """The zero-points message of a NumPy-track function that ran a torch operator must not tell a NumPy student
    to "write it with tensor operations". Would catch: outcome.forbidden_message in torch's words on both tracks."""
    sub = _numpy_variant(tmp_path, "rnn_layers.py", [
        ("import numpy as np\n", "import numpy as np\nimport torch\n"),
        ("np.tanh(x @ Wx + prev_h @ Wh + b)", "torch.tanh(torch.from_numpy(x @ Wx + prev_h @ Wh + b)).numpy()")])
    report = runner.grade(sub, _plan(["rnn_step_forward"]))
    (fr,) = report.functions
    assert fr.score == 0 and fr.forbidden
    text = fr.first_failure()
    assert "tensor" not in text, text


def test_an_array_of_an_unsupported_dtype_is_told_its_dtype(tmp_path):
    """np.array(list_of_arrays) of ragged pieces, or .astype(object), makes an object array: it is a NumPy array,
    and the student should read its dtype, not "should be a NumPy array, got numpy.ndarray(dtype('O'), 2 dims)"."""
    sub = _numpy_variant(tmp_path, "rnn_layers.py", [(
        "    cache = (x, prev_h, Wx, Wh, next_h)\n",
        "    cache = (x, prev_h, Wx, Wh, next_h)\n    next_h = next_h.astype(object)\n")])
    report = runner.grade(sub, _plan(["rnn_step_forward"]))
    text = messages(report, "rnn_step_forward")
    assert "should be a NumPy array" not in text, text
    assert "dtype" in text and "object" in text, text


# --------------------------------------------------------------------------- check.py's count
def _rows_by_library(x, W):
    return np.tanh(np.apply_along_axis(np.dot, 1, x, W))  # a Python loop over the rows, inside NumPy


def _rows_by_exec(x, W):
    scope = {"np": np, "x": x, "W": W}
    exec("out = np.array([np.tanh(r @ W) for r in x])", scope)
    return scope["out"]


def _vectorised(x, W):
    return np.tanh(x @ W)


@_open("check.py counts the student's lines only, not a loop run by np.apply_along_axis or exec")
def test_check_py_counts_a_batch_loop_it_does_not_see_in_the_students_lines():
    """check.py's vectorisation measure on the NumPy track (worker.count_lines: lines run in the student's files)
    sees no loop that runs in library code or in exec'd code, so a loop over the batch that Gradescope's timing
    fails (15-30x at these sizes) passes check.py: the student is told the wrong thing before submitting."""
    x, W = np.random.rand(64, 16), np.random.rand(16, 16)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")
    _, ref = worker.count_lines(_vectorised, (x, W), here)
    for fn in (_rows_by_library, _rows_by_exec):
        out, lines = worker.count_lines(fn, (x, W), here)
        assert np.allclose(out, _vectorised(x, W))
        assert lines > 10 * max(ref, 8), (fn.__name__, lines, ref)  # speed.FACTOR, speed.OPS_FLOOR


def test_relocate_parses_a_bounded_amount_of_the_submission(tmp_path, monkeypatch):
    """With lstm_layers.py missing, relocate parsed every other .py file (64 of them, up to 1 MiB each) twice, in
    the grader's own process, before any budget applies: 64 files of dense code (~1 s of ast.parse per MiB) held
    the grader ~170 s (measured). Would catch: relocate's parsing bounded by nothing but MAX_FILES."""
    import ast

    from autograder.engine import submission

    padding = "# " + "x" * 1000 + "\n"
    body = "def lstm_forward(x, h0, Wx, Wh, b):\n    return None\n" + padding * 1000  # ~1 MB, cheap to parse
    root = tmp_path / "sub"
    root.mkdir()
    (root / "rnn_layers.py").write_text("import numpy as np\n")
    for i in range(64):
        (root / ("helper%02d.py" % i)).write_text(body)
    parsed = []
    real = ast.parse
    monkeypatch.setattr(ast, "parse", lambda source, *a, **k: (parsed.append(len(source)), real(source, *a, **k))[1])
    fns = registry.select(names=["lstm_forward"])
    statuses = submission.locate(str(root), ["lstm_layers"])
    where, notes = submission.relocate(str(root), statuses, fns)
    assert where["lstm_forward"] == "helper00", where  # still found, in the first file that defines it
    assert sum(parsed) <= 8 * submission.MAX_FILE_BYTES, sum(parsed)


# --------------------------------------------------------------------------- after the call
_LATER = '''

class _Later:
    """Dropped with the cache when the worker's run_call returns: after the observer is gone, before the answer
    is encoded. It fills the arrays the backward returned (empty) with torch's autograd."""
    job = None

    def __del__(self):
        if self.job is not None:
            T = torch.from_numpy if isinstance(self.job[0], np.ndarray) else (lambda t: t)
            *ins, d, outs = self.job
            _cu.bw(*[T(v) for v in ins], T(d), [T(o) for o in outs])


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h, b, later = cache
    mk = np.zeros_like if isinstance(x, np.ndarray) else torch.zeros_like
    outs = (mk(x), mk(prev_h), mk(Wx), mk(Wh), mk(b))
    later.job = (x, prev_h, Wx, Wh, b, dnext_h, list(outs))
    return outs
'''


@_open("a finalizer of the student's runs after the call, unobserved, and can change the answer before it is sent")
@pytest.mark.parametrize("track", ["numpy", "torch"])
def test_what_runs_after_the_call_cannot_change_the_answer(tmp_path, track):
    """A finalizer on the cache runs when the worker drops it, outside the observer and before the values are
    encoded: here it computes the backward with torch's autograd into the (zero) arrays rnn_step_backward
    returned, and both functions got full marks, on both tracks. Would catch: a step's values encoded from the
    student's own objects, which student code can still reach after the call."""
    src = NP_SOLUTIONS if track == "numpy" else SOLUTIONS
    sub = copy_solutions(str(tmp_path / "sub"), src)
    path = os.path.join(sub, "rnn_layers.py")
    with open(path) as f:
        text = f.read()
    text = _without(text, "def rnn_step_backward", "def rnn_forward")
    text = text.replace("cache = (x, prev_h, Wx, Wh, next_h)", "cache = (x, prev_h, Wx, Wh, next_h, b, _Later())")
    text += _JIT_BACKWARD + "import numpy as np\n" + _LATER
    with open(path, "w") as f:
        f.write(text)
    report = runner.grade(sub, _plan(["rnn_step_backward"], track=track))
    assert scores(report)["rnn_step_backward"] == 0, messages(report, "rnn_step_backward")


# --------------------------------------------------------------------------- a false alarm of the autograd-library hook
def test_torch_importing_its_own_dynamo_is_not_an_autograd_library(tmp_path):
    """torch.optim's step imports torch._dynamo on first use, whose trace_rules probes importlib.util.find_spec for
    "tensorflow" (and others): the hook on autograd libraries recorded "tensorflow (a library that computes
    gradients ...)" and a correct tbptt_train that takes its SGD step with torch.optim.SGD (nothing forbidden)
    got 0 points on the torch track. Would catch: a probe that imports nothing counted as an import."""
    sub = make_variant(str(tmp_path / "sub"), "tbptt.py", [(
        "        params = {name: p - lr * clipped[name] for name, p in params.items()}  # a new dict of new tensors\n",
        "        params = {name: p.detach().clone() for name, p in params.items()}\n"
        "        opt = torch.optim.SGD(list(params.values()), lr=lr)\n"
        "        for name, p in params.items():\n"
        "            p.grad = clipped[name].clone()\n"
        "        opt.step()\n"
        "        for p in params.values():\n"
        "            p.grad = None\n")])
    report = runner.grade(sub, _plan(["tbptt_train"], track="torch"))
    (fr,) = report.functions
    assert not fr.forbidden, fr.forbidden
    assert fr.score == fr.max_score, messages(report, "tbptt_train")


# --------------------------------------------------------------------------- the observer's record, from a public handle
_TANH = "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)\n"
_TORCH_TANH = "torch.tanh(torch.from_numpy(x @ Wx + prev_h @ Wh + b)).numpy()"
_OS_WRITE = '''
import os as _os, re as _re, struct as _struct, sys as _sys
_w = _os.write
_WIT, _OUT = int(_sys.argv[6]), int(_sys.argv[2])  # the worker's witness pipe and answer pipe (its argv)


def _write(fd, data):
    if fd == _WIT:
        return len(data)  # the grader's record of violations: dropped
    if fd == _OUT and len(data) >= 16:
        data, n = bytes(data), len(data)
        h, p = _struct.unpack(">QQ", data[:16])
        if n == 16 + h + p:  # the answer: its violations emptied
            head = _re.sub(rb'"violations": \\{"t": "list", "items": \\[[^\\]]*\\]\\}',
                           b'"violations": {"t": "list", "items": []}', data[16:16 + h])
            _w(fd, _struct.pack(">QQ", len(head), p) + head + data[16 + h:])
            return n
    return _w(fd, data)


_os.write = _write
'''
_TAMPER = {
    # torch.overrides hands out the observer; its record's step -1 makes the grader drop the witness lines
    # (sandbox._witnessed: "an import's record, sent late"), and clear() empties what the answer carries
    "record": ("", "    rec = torch.overrides._get_current_function_mode().record\n    rec.step = -1\n"
                   "    next_h = %s\n    rec.clear()\n" % _TORCH_TANH),
    # the observers' own methods, swapped on their classes for the time of the torch call
    "class": ("import torch.utils._python_dispatch as _pd\n",
              "    modes = [torch.overrides._get_current_function_mode(), _pd._get_current_dispatch_mode()]\n"
              "    saved = [(type(m), n, type(m).__dict__.get(n)) for m, n in zip(modes, ('__torch_function__',"
              " '__torch_dispatch__')) if m is not None]\n"
              "    for cls, n, f in saved:\n"
              "        setattr(cls, n, lambda self, func, types, args=(), kwargs=None: func(*args, **(kwargs or {})))\n"
              "    next_h = %s\n"
              "    for cls, n, f in saved:\n"
              "        setattr(cls, n, f)\n" % _TORCH_TANH),
    # os.write, looked up by the worker when it writes the witness pipe and the answer
    "os.write": (_OS_WRITE, "    next_h = %s\n" % _TORCH_TANH),
}


@pytest.mark.parametrize("route", sorted(_TAMPER))
def test_silencing_the_observer_is_at_least_shown_to_the_instructor(tmp_path, route):
    """A torch operator on the NumPy track, hidden by a few lines that need neither gc nor frames (torch's own
    mode-stack accessors, or os.write replaced at import): full marks, no violation, and nothing in the
    instructor's review. The torch track is equally open (the same lines hide a .backward()). An observer in the
    student's process cannot be made safe from this: the least is that the instructor reads these lines (static
    review), as for gc and frames. Would catch: the routes missing from static.py's review."""
    header, body = _TAMPER[route]
    sub = _numpy_variant(tmp_path, "rnn_layers.py", [
        ("import numpy as np\n", "import numpy as np\nimport torch\n" + header), (_TANH, body)])
    report = runner.grade(sub, _plan(["rnn_step_forward"]))
    assert scores(report)["rnn_step_forward"] == 0 or report.review, (route, messages(report, "rnn_step_forward"))


_ASARRAY = '''
_JOB = []
_real_asarray = np.asarray


def _asarray(a, *args, **kwargs):  # called by the worker's wire.encode on each array it sends back
    if _JOB and type(a) is np.ndarray and not a.any():
        job = _JOB[0]
        if "res" not in job:
            job["res"] = [np.zeros_like(v) for v in job["shapes"]]
            T = torch.from_numpy
            _cu.bw(*[T(v) for v in job["ins"]], [T(o) for o in job["res"]])
        r = job["res"][job["next"]]
        if r.shape == a.shape:
            a[...] = r
            job["next"] += 1
            if job["next"] == 5:
                _JOB.clear()
    return _real_asarray(a, *args, **kwargs)


np.asarray = _asarray


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h, b = cache
    outs = (np.zeros_like(x), np.zeros_like(prev_h), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b))
    _JOB[:] = [{"ins": (x.copy(), prev_h.copy(), Wx.copy(), Wh.copy(), b.copy(), dnext_h.copy()), "shapes": outs,
                "next": 0}]
    return outs
'''


def test_a_library_function_the_student_replaced_is_not_called_on_the_answer(tmp_path):
    """np.asarray replaced at import: the worker's wire.encode called it on every array it sent back, after the
    call and outside the observer, where it filled the zeros rnn_step_backward returned with torch's autograd:
    full marks. Would catch: the send path (wire.encode, wire.frame, the worker's writes) looking up numpy.asarray,
    json.dumps, struct.pack or os.write when it runs instead of binding them before any student file."""
    sub = copy_solutions(str(tmp_path / "sub"), NP_SOLUTIONS)
    path = os.path.join(sub, "rnn_layers.py")
    with open(path) as f:
        text = f.read()
    text = _without(text, "def rnn_step_backward", "def rnn_forward")
    text = text.replace("cache = (x, prev_h, Wx, Wh, next_h)", "cache = (x, prev_h, Wx, Wh, next_h, b)")
    text += _JIT_BACKWARD + _ASARRAY
    with open(path, "w") as f:
        f.write(text)
    report = runner.grade(sub, _plan(["rnn_step_backward"]))
    assert scores(report)["rnn_step_backward"] == 0, messages(report, "rnn_step_backward")
