"""The sandboxed worker: the only process that imports and runs student code.

The grader imports it only for BOOTSTRAP and for speed.py, which runs the reference under the
same operator observer (Observer); it never runs main(). `sandbox.py` starts a fresh interpreter
with a tiny bootstrap (`BOOTSTRAP` below) and sends it the source of `wire.py` and of this file
over the request pipe, so the student's user never needs to read the grader's files. For batch
regrading, a pre-imported zygote (zygote.py) imports this file once and forks each worker, which
calls main().

What is forbidden comes from forbidden.py (its TABLE): the guards' entry points (GUARDS) here,
and each call's deny-list in the "call" request. Imported from the package, this file reads
forbidden.GUARDS; sent as source text, it has no package to import from, and BOOTSTRAP (built
here, in the grader) carries the same list to it as a Python literal.

Protocol (frames of wire.py on two pipes whose numbers come in argv):
    -> {"op": "load", "id": k, "module": "rnn_layers"}
    <- {"id": k, "ok": true} | {"id": k, "ok": false, "error": {...}}
    -> {"op": "call", "id": k, "inputs": {name: tensor}, "steps": [step, ...], "denies": [{op: words}, ...],
        "track": "torch" | "numpy" (the functions get NumPy arrays and may run no torch operator), "dry": true (optional: decode, answer, run nothing), "inputs_after": false (optional: send none back)}
       step = {"module": m, "fn": f, "args": [{"in": name} | {"dict": prefix} | {"step": i, "index": j}],
               "arity": n or null, "skip": [indices not to send back (caches)], "deny": index in denies}
       (steps.call_request builds it)
    <- {"ready": true, "torch": version, "cuda": bool, "layers": {layer: status}, "witness": fd}  (first)
    <- {"id": k, "steps": [{"ok": true, "value": ..., "violations": [...], "ops": tensor operations} |
                           {"ok": false, "error": {...}, "violations": [...]}],
        "inputs_after": {name: tensor}}
    -> {"op": "unittest", "id": k, "module": name, "filename": label, "source": [text, ...], "track": t}
    <- several frames, each {"id": k, "event": ...}: see run_unittest (instructor tests)
Beside them, the witness pipe (its number in argv / the ready message): every violation the worker's
guards and operator observer record, written as it happens (`_Record`; sandbox.Worker.witnessed).
"""
import contextlib
import importlib
import io
import os
import sys
import traceback
import types
import unittest

import numpy
import torch
from torch.overrides import TorchFunctionMode

if "_SENT_GUARDS" in globals():  # sent as source text (BOOTSTRAP): the grader's forbidden.GUARDS came along
    GUARDS = [tuple(g) for g in _SENT_GUARDS]  # noqa: F821
    AUTOGRAD_LIBRARIES = tuple(_SENT_LIBRARIES)  # noqa: F821
else:  # imported from the package: the grader, the zygote, the public checker
    from .forbidden import AUTOGRAD_LIBRARIES, GUARDS

_BOOTSTRAP = r"""
import json, os, struct, sys, types
_rfd, _wfd = int(sys.argv[1]), int(sys.argv[2])
def _r(n):
    b = b""
    while len(b) < n:
        c = os.read(_rfd, n - len(b))
        if not c:
            os._exit(70)
        b += c
    return b
_h, _p = struct.unpack(">QQ", _r(16))
_src = json.loads(_r(_h))
_r(_p)
for _name in ("wire", "isolation"):
    _m = types.ModuleType("_ag_" + _name)
    exec(compile(_src[_name], "<grader:%s>" % _name, "exec"), _m.__dict__)
    sys.modules["_ag_" + _name] = _m
_g = {"__name__": "_ag_worker", "_SENT_GUARDS": @GUARDS@, "_SENT_LIBRARIES": @LIBRARIES@}
exec(compile(_src["worker"], "<grader:worker>", "exec"), _g)
del _h, _p, _src, _m, _name
_g["main"](_rfd, _wfd, sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1", int(sys.argv[6]))
"""
# The library entry points that do a part's work, and autograd's (forbidden.GUARDS: (owner path,
# attribute, name shown to the student)), written into the bootstrap for a worker started fresh.
BOOTSTRAP = _BOOTSTRAP.replace("@GUARDS@", repr([tuple(g) for g in GUARDS])).replace(
    "@LIBRARIES@", repr(tuple(AUTOGRAD_LIBRARIES)))


class _Record(list):
    """The violations seen during the current request, each also written out as it happens, as
    "<step>\t<label>\n", to the grader's witness pipe: what reached the grader stays there, whatever
    the student's code does to this list afterwards (step: the call's step, -1 an import; -2, the
    instructor tests, is not written)."""

    __slots__ = ()  # the pipe and the step are the module's (_witness), read-only here: student code that gets
    # the record (torch.overrides._get_current_function_mode().record) cannot point them elsewhere
    fd = property(lambda self: _witness[0])
    step = property(lambda self: _witness[1])

    def append(self, label):
        super().append(label)
        fd, step = _witness
        if fd is not None and step != -2:  # -2: instructor tests, which may use autograd
            try:
                _write(fd, ("%d\t%s\n" % (step, label)).encode()[:1000])
            except OSError:
                pass


_witness = [None, -1]  # the witness pipe's fd, and the step of the request now running (-1 an import)
_write = os.write  # the witness pipe's and the answers' writes: bound before any student file (os.write = f)


_violations = _Record()
_guards = []  # (owner, attribute, guard, label): checked after every call


def _resolve(path):
    obj = importlib.import_module(path.split(".")[0])
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _make_guard(original, label):
    def guard(*args, **kwargs):
        _violations.append(label)
        return original(*args, **kwargs)

    guard.__name__ = getattr(original, "__name__", "guard")
    guard.__doc__ = getattr(original, "__doc__", None)
    return guard


class _EngineGuard:
    """Stands in for autograd's C++ engine: every backward pass, however it was reached, is seen."""

    def __init__(self, engine):
        object.__setattr__(self, "_engine", engine)

    def run_backward(self, *args, **kwargs):
        _violations.append("autograd (a backward pass through torch's autograd engine)")
        return self._engine.run_backward(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def install_guards():
    """Record every use of a forbidden entry point (the call itself still works).

    Called before any student module is imported. verify_guards() notices a student who puts an
    original back (importlib.reload of a torch module, say) and records that as a violation.
    """
    for owner_path, attr, label in GUARDS:
        try:
            owner = _resolve(owner_path)
            original = getattr(owner, attr)
        except (ImportError, AttributeError):
            continue
        guard = _make_guard(original, label)
        try:
            setattr(owner, attr, guard)
        except (TypeError, AttributeError):
            continue
        _guards.append((owner, attr, guard, label))
    try:
        from torch.autograd.variable import Variable

        guard = _EngineGuard(Variable._execution_engine)
        Variable._execution_engine = guard
        _guards.append((Variable, "_execution_engine", guard, "autograd (its engine)"))
    except (ImportError, AttributeError):
        pass


_observer = []  # [observe function] once install_observer() ran
# The NumPy track (a call request's "track"): the student's functions get NumPy arrays and may run no torch
# operator at all (Observer.every); their arrays, NumPy scalars and floats go back as wire.py carries them.
TORCH_IN_NUMPY = "a torch operator in the NumPy track"
TORCH_IN_NUMPY_LABEL = TORCH_IN_NUMPY + " (torch.%s): write these functions with NumPy only"
# Autograd by another library (either track; forbidden.AUTOGRAD_LIBRARIES): importing one is a violation, seen
# by an import hook when the import happens and by a look at sys.modules after every call (_autograd_libraries).
AUTOGRAD_LABEL = "%s (a library that computes gradients; backward passes are written by hand)"


class _AutogradImports:
    """A meta path finder, first on sys.meta_path: records the import of an autograd library, finds nothing."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in AUTOGRAD_LIBRARIES and not _asked_by_torch():
            _violations.append(AUTOGRAD_LABEL % top)
        return None


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_IMPORTLIB_DIR = os.path.dirname(importlib.__file__) + os.sep


def _asked_by_torch():
    """Whether the import being looked up was asked for by torch's own code: torch._dynamo, imported lazily by
    torch.optim's step and others, probes importlib.util.find_spec("tensorflow") and others, which imports
    nothing. (A real import of one, whoever asks, still lands in sys.modules: _autograd_libraries.)"""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename.startswith(_IMPORTLIB_DIR)):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR)


def _autograd_libraries():
    """Record every autograd library in sys.modules (however it got there) and put the import hook back first.
    Called after every call, so it looks up the libraries' names (a microsecond), never walks sys.modules
    (a thousand entries once torch is loaded: a quarter of a millisecond, which the vectorisation check would
    charge to the student)."""
    try:
        for name in AUTOGRAD_LIBRARIES:
            label = AUTOGRAD_LABEL % name
            if name in sys.modules and label not in _violations:
                _violations.append(label)
        if not sys.meta_path or type(sys.meta_path[0]) is not _AutogradImports:
            sys.meta_path.insert(0, _AutogradImports())
    except BaseException:
        _violations.append("a change to sys.modules or sys.meta_path the grader could not read")


def count_lines(fn, args, prefix):
    """(fn(*args), the lines of Python run in files whose path starts with `prefix`): the public checker's
    vectorisation measure in the NumPy track, whose operators no observer sees (speed.counted). A loop over
    the batch runs N times the lines of one step; a loop over time, as the reference's, runs as many as it."""
    seen = [0]

    def lines(frame, event, arg):
        if event == "line":
            seen[0] += 1
        return lines

    def calls(frame, event, arg):
        return lines if frame.f_code.co_filename.startswith(prefix) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        out = fn(*args)
    finally:
        sys.settrace(previous)
    return out, seen[0]


def to_numpy(x):
    """The NumPy track's arguments: every (CPU) tensor in x (a dict of inputs; a cache sent back is a tuple of
    them) as a NumPy array sharing its memory, so that a change made in place is seen in the tensors sent
    back (inputs_after). Containers are new; the wire format bounds their depth."""
    if type(x) is _Tensor:
        return x.numpy()
    if type(x) in (tuple, list):
        return type(x)(to_numpy(v) for v in x)
    if type(x) is dict:
        return {k: to_numpy(v) for k, v in x.items()}
    return x
SUBCLASS = "a torch.Tensor subclass with its own __torch_function__ (it would run outside the grader's observer)"
_Tensor = torch.Tensor  # bound now, before any student file is imported
# The NumPy track's calls run with NumPy's floating-point warnings off: an overflow gives the inf or NaN the
# grader reports ("overflow or an unstable formula?"), never a RuntimeWarning printed into the student's
# output, once per line of theirs. (Bound now: a student file cannot hand the worker another errstate.)
_quiet_numpy = numpy.errstate


def op_name(func):
    """The operator's name without namespace or overload: torch._VF.lstm, torch.ops.aten.lstm.input,
    Tensor.lstm ... all give "lstm"."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = str(func)
    return name.rsplit("::", 1)[-1].split(".")[0]


class Observer(TorchFunctionMode):
    """Sees every torch operator that runs while it is on torch's function-mode stack, whatever its name.

    Each operator named in `deny` ({op_name: words for the student}, a GradedFunction's forbidden_ops)
    is recorded, as is any operator that returns a tensor requiring grad (autograd by another road)
    and any call that a torch.Tensor subclass of the student's would handle (its own __torch_function__
    would run unobserved); each label once, appended to `record` (a list). The worker keeps one
    on its stack during every student call (install_observer), recording into the witnessed list of
    violations; speed.py runs the reference under one (`with Observer(deny):`), so that both sides
    pay the same per operator.
    """

    def __init__(self, deny=None, record=None):
        super().__init__()
        self.deny = deny if deny is not None else {}
        self.record = record if record is not None else []
        self.count = 0  # the tensor operations seen (the public checker's vectorisation check: speed.counted)
        self.every = None  # the NumPy track: every torch operator is recorded, as this label with its name

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += 1
        record = self.record
        label = self.deny.get(op_name(func))
        if label is not None and label not in record:
            record.append(label)
        if self.every is not None and not any(r.startswith(TORCH_IN_NUMPY) for r in record):
            record.append(self.every % op_name(func))  # once a call: its first torch operator, named
        if any(t is not _Tensor for t in types) and SUBCLASS not in record:
            record.append(SUBCLASS)  # its own __torch_function__ would run unobserved
        out = func(*args, **(kwargs or {}))
        if isinstance(out, _Tensor) and out.requires_grad:
            label = "autograd (%s returned a tensor that requires grad)" % op_name(func)
            if label not in record:
                record.append(label)
        return out


def install_observer(torch):
    """Keep an Observer on top of torch's function-mode stack during every student call.

    observed(fn, args, deny) runs fn(*args) with the observer on top of torch's function-mode stack,
    recording into the worker's violations (the witness pipe), and returns (what fn returned, the tensor
    operations it ran). The stack is checked when the call
    returns: an observer that was popped, replaced or buried under another mode is itself a
    violation. The torch functions used here are bound now, before any student file is imported, so
    that patching them later changes nothing; and what switches the observer off (a pop of it,
    DisableTorchFunction) is guarded.
    """
    C = torch._C
    length, at, push, pop = (C._len_torch_function_stack, C._get_function_stack_at,
                             C._push_on_torch_function_stack, C._pop_torch_function_stack)
    watcher = Observer(record=_violations)
    torch_dir = os.path.dirname(torch.__file__) + os.sep

    def switch_guard(original, label):
        """Stands in for a context manager that switches torch functions (and so the observer) off:
        recorded when student code (anything but torch's own Python) asks for one."""

        def guard(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith(torch_dir):
                _violations.append(label)
            return original(*args, **kwargs)

        return guard

    def pop_guard():
        mode = pop()
        if mode is watcher:  # torch never pops a user's mode in the middle of tensor operations
            _violations.append("a pop of the grader's operator observer off torch's function-mode stack")
        return mode

    C._pop_torch_function_stack = pop_guard
    _guards.append((C, "_pop_torch_function_stack", pop_guard, "torch._C._pop_torch_function_stack"))
    for name in ("DisableTorchFunction", "DisableTorchFunctionSubclass"):
        original = getattr(C, name, None)
        if original is not None:
            guard = switch_guard(original, "torch._C.%s, which switches off the grader's operator observer" % name)
            setattr(C, name, guard)
            _guards.append((C, name, guard, "torch._C.%s" % name))

    def observed(fn, args, deny, every=None):
        # The call's own copy of its deny-list (a request's steps share one decoded list), and what it holds,
        # kept here: a list emptied in place during the call is seen when it returns. every: the NumPy
        # track's label for any torch operator (Observer.every).
        own, held = dict(deny), dict(deny)
        watcher.deny, watcher.count, watcher.every = own, 0, every
        base = length()
        push(watcher)
        try:
            return fn(*args), watcher.count
        finally:
            if length() != base + 1 or at(base) is not watcher:
                _violations.append("a change to torch's function-mode stack that removed the grader's "
                                   "operator observer")
            if watcher.record is not _violations or watcher.deny is not own or own != held or watcher.every != every:
                _violations.append("a change to the grader's operator observer (what it denies or where it records)")
            while length() > base:
                pop()
            watcher.deny, watcher.record, watcher.every = {}, _violations, None

    # Where threads are allowed (CUDA runs: isolation.confine), a thread the student starts gets the
    # observer on its own function-mode stack (each thread has its own) before it runs anything.
    import _thread
    import threading

    start = _thread.start_new_thread

    def start_new_thread(function, args, kwargs=None):
        def observed_thread(*a, **k):
            base = length()
            push(watcher)
            try:
                return function(*a, **k)
            finally:  # a thread must not end with a mode on its stack (torch aborts at its exit)
                while length() > base:
                    pop()

        return start(observed_thread, args, kwargs or {})

    for owner, attr in ((_thread, "start_new_thread"), (_thread, "start_new"), (threading, "_start_new_thread")):
        if getattr(owner, attr, None) is start:
            setattr(owner, attr, start_new_thread)
            _guards.append((owner, attr, start_new_thread, "%s.%s" % (owner.__name__, attr)))
    _observer.append(observed)
    return observed


def verify_guards():
    for owner, attr, guard, label in _guards:
        try:
            intact = getattr(owner, attr) is guard
        except BaseException:
            intact = False
        if not intact:
            _violations.append("%s, after undoing the grader's guard on it" % label)
            try:
                setattr(owner, attr, guard)
            except BaseException:
                pass


def describe_error(exc, scratch):
    """A short, student-facing account of an exception: type, message, their frames only."""
    try:
        msg = str(exc)
    except BaseException:
        msg = "<message could not be printed>"
    frames = []
    try:
        for fs in traceback.extract_tb(exc.__traceback__):
            if fs.filename.startswith(scratch):
                frames.append("  %s, line %s, in %s\n    %s" % (
                    os.path.relpath(fs.filename, scratch), fs.lineno, fs.name, (fs.line or "").strip()))
    except BaseException:
        frames = []
    return {"type": type(exc).__name__, "message": msg[:1500], "trace": "\n".join(frames[-6:])[:3000]}


def limit_private_memory(extra_mb):
    """RLIMIT_DATA at what this process uses now plus extra_mb (see the grader's memory.py).

    Called once torch is loaded and before any student file is: the limit then counts only what
    the student's code allocates, whatever the build of torch mapped at import.
    """
    import resource

    with open("/proc/self/status") as f:
        now = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmData:"))
    cap = now + (extra_mb << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


# What the worker's own code, and the instructor tests it runs, import: imported before the student's
# folder is on sys.path, so that no submission file can stand in for one of them (submission.py also
# refuses such files by name).
PRELOAD = ("numpy", "unittest", "unittest.mock", "traceback", "importlib", "math", "json", "struct",
           "gradescope_utils.autograder_utils.decorators", "gradescope_utils.autograder_utils.files")


def preload():
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # not installed here: then nothing can be shadowed either (submission.py)
            pass


def main(rfd, wfd, scratch, data_mb=0, cuda=False, witness=None):
    wire = sys.modules["_ag_wire"]
    _witness[0] = witness
    isolation = sys.modules["_ag_isolation"]
    import torch

    torch.set_num_threads(1)
    if cuda:  # CUDA's context (hundreds of MB of host memory) belongs to the baseline, not to the student
        try:
            torch.empty(1, device="cuda")
        except Exception:
            pass
    preload()
    if data_mb:
        limit_private_memory(data_mb)
    os.chdir(scratch)
    install_guards()
    install_observer(torch)
    sys.meta_path.insert(0, _AutogradImports())
    # The kernel's last layers (isolation.confine): from here on no process, no exec, no IPC, no Unix
    # socket, no signal but to itself, no other process's /proc files, and on CPU runs no new thread.
    layers = isolation.confine(threads=cuda)
    sys.path.insert(0, scratch)

    def send(obj):
        try:
            data = wire.frame(obj)
        except BaseException as e:  # e.g. a returned tensor that cannot be serialized
            data = wire.frame({"id": obj.get("id"), "ok": False, "steps": [],
                               "error": {"type": type(e).__name__, "trace": "",
                                         "message": "the returned values could not be sent back "
                                                    "to the grader: %s" % (e,)}})
        view = memoryview(data)
        while view:
            n = _write(wfd, view)
            view = view[n:]

    def to_device(data, device, requires_grad):
        return data.to(device)

    main_pid = os.getpid()
    send({"ready": True, "torch": torch.__version__, "cuda": bool(torch.cuda.is_available()), "layers": layers,
          "witness": witness})
    modules = {}
    while True:
        try:
            header, payload = wire.read_frame(rfd, os.read)
        except EOFError:
            os._exit(0)
        req = wire.decode(header, payload, to_device)
        op = req.get("op")
        if op == "load":
            name = req["module"]
            del _violations[:]
            _witness[1] = -1
            try:
                modules[name] = importlib.import_module(name)
                if os.getpid() != main_pid:
                    os._exit(0)
                verify_guards()
                _autograd_libraries()
                send({"id": req["id"], "ok": True, "violations": list(_violations)})
            except BaseException as e:  # SystemExit and KeyboardInterrupt included
                send({"id": req["id"], "ok": False, "error": describe_error(e, scratch),
                      "violations": list(_violations)})
        elif op == "call":
            resp = run_call(req, modules, scratch, torch)
            if os.getpid() != main_pid:  # a process the student forked must never answer
                os._exit(0)
            send(resp)
        elif op == "unittest":
            del _violations[:]
            _witness[1] = -2  # instructor tests may use autograd: the grader ignores these
            run_unittest(req, scratch, send, main_pid)
            del _violations[:]
        else:
            os._exit(71)


def run_call(req, modules, scratch, torch):
    inputs = req["inputs"]
    after = inputs if req.get("inputs_after", True) else {}  # speed.py's requests need no in-place check
    if req.get("dry"):  # speed.py's measure of a request's own cost: decoded, answered, nothing run
        return {"id": req["id"], "steps": [], "inputs_after": after}
    numpy_track = req.get("track") == "numpy"
    given = to_numpy(inputs) if numpy_track else inputs  # what the student's functions get
    # The NumPy track: an array changed in place as an object (x.shape = ..., x.dtype = ...) leaves its tensor's
    # bytes and shape alone; what each array was is kept, to be compared when the steps are done.
    shaped = {k: _layout(v) for k, v in given.items() if type(v) is numpy.ndarray} if numpy_track and after else {}
    every = TORCH_IN_NUMPY_LABEL if numpy_track else None
    quiet = (lambda: _quiet_numpy(all="ignore")) if numpy_track else contextlib.nullcontext
    outs = []
    results = []
    for index, step in enumerate(req["steps"]):
        del _violations[:]
        _witness[1] = index
        res = {"ok": False, "violations": []}
        results.append(res)
        try:
            module = modules[step["module"]]
            fn = getattr(module, step["fn"], None)
            if not callable(fn):
                raise AttributeError("%s.py has no function %s" % (step["module"], step["fn"]))
            args = []
            for a in step["args"]:
                if "in" in a:
                    args.append(given[a["in"]])
                elif "dict" in a:
                    p = a["dict"]
                    args.append({k[len(p):]: v for k, v in given.items() if k.startswith(p)})
                else:
                    args.append(outs[a["step"]][a["index"]])
            with quiet():
                if req.get("count_lines"):  # the public checker's count in the NumPy track: lines, not operators
                    (out, ops), _ = _observer[0](count_lines, (fn, args, os.path.join(scratch, "")),
                                                 req["denies"][step["deny"]], every)
                else:
                    out, ops = _observer[0](fn, args, req["denies"][step["deny"]], every)
            if any(t.is_cuda for t in inputs.values() if type(t) is torch.Tensor):
                torch.cuda.synchronize()  # an asynchronous CUDA error belongs to this call
        except BaseException as e:
            res["error"] = describe_error(e, scratch)
            verify_guards()
            _autograd_libraries()
            res["violations"] = list(_violations)
            break
        verify_guards()
        _autograd_libraries()
        res["violations"] = list(_violations)
        res["ops"] = ops
        arity = step.get("arity")
        if arity is not None and not (type(out) in (tuple, list) and len(out) == arity):
            res["ok"] = True
            res["value"] = out  # the grader reports the wrong structure
            outs.append(None)
            if any("step" in a for s in req["steps"] for a in s["args"]):
                res["bad_structure"] = True
                break
            continue
        outs.append(out)
        skip = set(step.get("skip", ()))
        if type(out) in (tuple, list):
            res["value"] = tuple(None if i in skip else v for i, v in enumerate(out))
        else:
            res["value"] = out
        res["ok"] = True
    changed = [k for k, was in shaped.items() if _layout(given[k]) != was]
    if changed:  # sent back as a tensor of another shape: the grader says the input was modified in place
        after = dict(after, **{k: _new_empty(inputs[k], (0,) * (inputs[k].dim() + 1)) for k in changed})
    return {"id": req["id"], "steps": results, "inputs_after": after}


_new_empty = torch.Tensor.new_empty  # bound before any student file is imported


def _layout(array):
    """What an array object says it is (its bytes aside): shape, dtype, strides and where its data lies."""
    try:
        return (array.shape, array.dtype.str, array.strides, array.__array_interface__["data"][0])
    except BaseException:
        return None


# --------------------------------------------------------------------------- instructor tests
UNITTEST_OUTPUT_CHARS = 1800  # what a test printed, kept per test (a wire string holds 2000)


def _number(x):
    """A float from an int, float or 0-dim tensor an instructor used as a weight or score, else None."""
    if x is None or isinstance(x, bool):
        return None
    try:
        return float(x)
    except BaseException:
        return None


def _text(x, limit=200):
    return None if x is None else str(x)[:limit]


def unittest_meta(test):
    """What gradescope-utils' decorators put on a test method, as plain JSON values."""
    method = getattr(test, getattr(test, "_testMethodName", ""), None)

    def attr(name):
        try:
            return getattr(method, name, None)
        except BaseException:
            return None

    try:
        doc = test.shortDescription()
    except BaseException:
        doc = None
    tags = attr("__tags__")
    return {"id": _text(test.id(), 500), "name": _text(doc or str(test), 500),
            "weight": _number(attr("__weight__")), "visibility": _text(attr("__visibility__"), 40),
            "number": _text(attr("__number__"), 40),
            "tags": [_text(t, 100) for t in tags][:20] if isinstance(tags, (list, tuple)) else None,
            "hide_errors": _text(attr("__hide_errors__"), 1500),
            "leaderboard": _text(attr("__leaderboard_column__"), 100),
            "leaderboard_order": _text(attr("__leaderboard_sort_order__"), 10)}


class _CappedText(io.StringIO):
    """A StringIO that keeps the first `cap` characters written to it and counts the rest."""

    def __init__(self, cap):
        super().__init__()
        self.cap = cap
        self.dropped = 0

    def write(self, s):
        n = super().write(s[:max(0, self.cap - self.tell())]) if isinstance(s, str) else super().write(s)
        self.dropped += len(s) - n
        return len(s)

    def truncate(self, size=None):
        self.dropped = 0
        return super().truncate(size)

    def text(self):
        more = "\n[%d more characters of output dropped]" % self.dropped if self.dropped else ""
        return self.getvalue() + more


class _ReportingResult(unittest.TestResult):
    """Reports every test to the grader the moment it ends; subTests and fixtures included.

    Each test's outcome: status "passed", "failed" (an assertion, or any failing subTest),
    "error" (any other exception, in the test or in a subTest), "skipped", "expected_failure"
    or "unexpected_success"; the messages of every failure in order; the score a
    @partial_credit test set; what the test printed (unittest's buffer, as gradescope-utils).
    """

    def __init__(self, emit, scratch):
        super().__init__()
        self.emit, self.scratch = emit, scratch
        self.buffer = True
        self._stdout_buffer = _CappedText(UNITTEST_OUTPUT_CHARS)
        self._stderr_buffer = _CappedText(UNITTEST_OUTPUT_CHARS)
        self.test = None  # the test running now
        self.outcome = None
        self.ended = False
        self.unfinished = None  # id of a test that stopped without unittest reporting how

    def describe(self, test, err):
        exc = err[1]
        kind = getattr(test, "failureException", None)  # None for a setUpClass-style error holder
        if isinstance(kind, type) and isinstance(exc, kind):  # an assertion: its message, as gradescope-utils
            try:
                return str(exc)[:1500]
            except BaseException:
                return "%s (its message could not be printed)" % type(exc).__name__
        e = describe_error(exc, self.scratch)
        return ("%s: %s" % (e["type"], e["message"]) + ("\n" + e["trace"] if e["trace"] else ""))[:1900]

    def startTest(self, test):
        self.test = test
        self.outcome = {"status": "passed", "messages": [], "subtests_failed": 0}
        self.ended = False  # whether unittest said how the test ended (a KeyboardInterrupt never does)
        self.emit("start", test=_text(test.id(), 500))
        super().startTest(test)

    def problem(self, test, err, status, prefix=""):
        if self.test is None or test is not self.test:  # setUpClass, tearDownModule, ...
            self.emit("fixture", where=_text(test, 300), error=self.describe(test, err))
            return
        self.ended = True
        if self.outcome["status"] != "error":
            self.outcome["status"] = status
        if len(self.outcome["messages"]) < 20:
            self.outcome["messages"].append(prefix + self.describe(test, err))

    def addSuccess(self, test):
        if test is self.test:
            self.ended = True

    def addFailure(self, test, err):
        self.problem(test, err, "failed")

    def addError(self, test, err):
        self.problem(test, err, "error")

    def addSubTest(self, test, subtest, err):
        if err is None or test is not self.test:
            return
        self.outcome["subtests_failed"] += 1
        try:
            label = subtest._subDescription()
        except BaseException:
            label = "(<subtest>)"
        status = "failed" if isinstance(err[1], test.failureException) else "error"
        self.problem(test, err, status, prefix="subTest %s: " % label)

    def addSkip(self, test, reason):
        if self.test is None:  # a setUpClass or setUpModule that raised SkipTest: its tests never run
            self.emit("fixture", where=_text(test, 300), error="SkipTest: %s" % _text(reason, 500))
        elif test is self.test and self.outcome["status"] == "passed":
            self.ended = True
            self.outcome["status"] = "skipped"
            self.outcome["messages"].append(_text(reason, 500))

    def addExpectedFailure(self, test, err):
        if test is self.test and self.outcome["status"] == "passed":
            self.ended = True
            self.outcome["status"] = "expected_failure"

    def addUnexpectedSuccess(self, test):
        if test is self.test:
            self.ended = True
            self.outcome["status"] = "unexpected_success"
            self.outcome["messages"].append("the test was expected to fail (@expectedFailure) but passed")

    def stopTest(self, test):
        if test is not self.test:
            return super().stopTest(test)
        if not self.ended and not self.outcome["subtests_failed"]:  # stopped by an exception unittest lets through
            self.outcome["status"] = "error"
            self.outcome["messages"].append("the test stopped before it finished")
            self.unfinished = test.id()
        out = self._stdout_buffer.text()
        err = self._stderr_buffer.text()
        if err:
            out += ("" if not out or out.endswith("\n") else "\n") + err
        method = getattr(test, getattr(test, "_testMethodName", ""), None)
        self.emit("result", test=_text(test.id(), 500), status=self.outcome["status"],
                  messages=self.outcome["messages"], subtests_failed=self.outcome["subtests_failed"],
                  score=_number(getattr(method, "__score__", None)),
                  leaderboard_value=_leaderboard_value(getattr(method, "__leaderboard_value__", None)),
                  output=out[:UNITTEST_OUTPUT_CHARS + 100])
        self.test = self.outcome = None
        del _violations[:]  # instructor tests may use autograd: guards only record, nobody reads it
        super().stopTest(test)


def _leaderboard_value(x):
    return x[:200] if isinstance(x, str) else _number(x)


def _all_tests(suite):
    if isinstance(suite, unittest.TestSuite):
        for t in suite:
            yield from _all_tests(t)
    else:
        yield suite


def run_unittest(req, scratch, send, main_pid):
    """Exec an instructor's unittest module (sent as source text, in pieces) and run its tests.

    The module runs with the student's scratch folder first on sys.path, so `import tbptt`
    imports the student's file. Every frame sent back carries the request's id and an event:
        {"event": "tests", "tests": [unittest_meta, ...]}   the module loaded: its tests, in run order
        {"event": "error", "error": {...}}               the module could not be loaded
        {"event": "start", "test": id}                   a test begins
        {"event": "result", "test": id, "status": ..., "messages": [...], "subtests_failed": n,
         "score": float|None, "leaderboard_value": ..., "output": text}   a test ended
        {"event": "fixture", "where": ..., "error": text}  setUpClass, tearDownModule, ... raised
        {"event": "done"} | {"event": "aborted", "error": {...}, "test": id}   the run ended, or
                                                       broke off (in test id)
    Tests are reported as they end, so the grader knows which ones finished when a later one
    hangs or kills the process.
    """
    def emit(event, **fields):
        if os.getpid() != main_pid:  # a process the test or the student forked never answers
            os._exit(0)
        send(dict(fields, id=req["id"], event=event))

    name = req["module"]
    module = types.ModuleType(name)
    module.__file__ = req["filename"]
    module.TRACK = "numpy" if req.get("track") == "numpy" else "torch"  # the course's track, for the test to read
    try:
        code = compile("".join(req["source"]), req["filename"], "exec")
        sys.modules[name] = module
        exec(code, module.__dict__)
        suite = unittest.defaultTestLoader.loadTestsFromModule(module)
        metas = [unittest_meta(t) for t in _all_tests(suite)]
    except BaseException as e:  # SystemExit included: a student module that exits on import
        emit("error", error=describe_error(e, scratch))
        return
    emit("tests", tests=metas)
    result = _ReportingResult(emit, scratch)
    try:
        suite.run(result)
    except BaseException as e:  # KeyboardInterrupt is not caught by unittest
        emit("aborted", error=describe_error(e, scratch), test=_text(result.unfinished, 500))
        return
    emit("done")
