"""The sandboxed worker: the only process that imports and runs student code.

This file is not imported by the grader. `sandbox.py` starts a fresh interpreter with a tiny
bootstrap (`BOOTSTRAP` below) and sends it the source of `wire.py` and of this file over the
request pipe, so the student's user never needs to read the grader's files.

Protocol (frames of wire.py on two pipes whose numbers come in argv):
    -> {"op": "load", "id": k, "module": "rnn_layers"}
    <- {"id": k, "ok": true} | {"id": k, "ok": false, "error": {...}}
    -> {"op": "call", "id": k, "inputs": {name: tensor}, "steps": [step, ...]}
       step = {"module": m, "fn": f, "args": [{"in": name} | {"dict": prefix} | {"step": i, "index": j}],
               "arity": n or null, "skip": [indices not to send back (caches)]}
    <- {"id": k, "steps": [{"ok": true, "value": ..., "violations": [...]} |
                           {"ok": false, "error": {...}, "violations": [...]}],
        "inputs_after": {name: tensor}}
"""
import importlib
import os
import sys
import time
import traceback

BOOTSTRAP = r"""
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
_m = types.ModuleType("_ag_wire")
exec(compile(_src["wire"], "<grader:wire>", "exec"), _m.__dict__)
sys.modules["_ag_wire"] = _m
_g = {"__name__": "_ag_worker"}
exec(compile(_src["worker"], "<grader:worker>", "exec"), _g)
del _h, _p, _src, _m
_g["main"](_rfd, _wfd, sys.argv[3], int(sys.argv[4]))
"""

# Library entry points that do a part's work, or autograd (API.md "Conventions").
# Each entry: (owner path, attribute, name shown to the student).
FORBIDDEN = [
    ("torch.Tensor", "backward", "Tensor.backward (autograd)"),
    ("torch.Tensor", "requires_grad_", "Tensor.requires_grad_ (autograd)"),
    ("torch.autograd", "backward", "torch.autograd.backward"),
    ("torch.autograd", "grad", "torch.autograd.grad"),
    ("torch.autograd.functional", "jacobian", "torch.autograd.functional.jacobian"),
    ("torch.autograd.functional", "vjp", "torch.autograd.functional.vjp"),
    ("torch.func", "grad", "torch.func.grad"),
    ("torch.func", "vjp", "torch.func.vjp"),
    ("torch.func", "jacrev", "torch.func.jacrev"),
    ("torch.nn.RNN", "__init__", "torch.nn.RNN"),
    ("torch.nn.LSTM", "__init__", "torch.nn.LSTM"),
    ("torch.nn.GRU", "__init__", "torch.nn.GRU"),
    ("torch.nn.RNNCell", "__init__", "torch.nn.RNNCell"),
    ("torch.nn.LSTMCell", "__init__", "torch.nn.LSTMCell"),
    ("torch.nn.GRUCell", "__init__", "torch.nn.GRUCell"),
    ("torch.nn.MultiheadAttention", "__init__", "torch.nn.MultiheadAttention"),
    ("torch.nn.functional", "scaled_dot_product_attention", "F.scaled_dot_product_attention"),
    ("torch.nn.functional", "multi_head_attention_forward", "F.multi_head_attention_forward"),
    ("torch.nn.functional", "cross_entropy", "F.cross_entropy"),
    ("torch.nn.functional", "embedding", "F.embedding"),
    ("torch.nn.utils", "clip_grad_norm_", "torch.nn.utils.clip_grad_norm_"),
    ("torch.nn.utils.clip_grad", "clip_grad_norm_", "torch.nn.utils.clip_grad_norm_"),
    ("torch.nn.utils", "clip_grads_with_norm_", "torch.nn.utils.clip_grads_with_norm_"),
    ("torch.nn.utils", "get_total_norm", "torch.nn.utils.get_total_norm"),
    # the ATen ops underneath the modules above, reachable as torch.<op>
    ("torch", "embedding", "torch.embedding"),
    ("torch", "rnn_tanh", "torch.rnn_tanh"),
    ("torch", "rnn_relu", "torch.rnn_relu"),
    ("torch", "lstm", "torch.lstm"),
    ("torch", "gru", "torch.gru"),
    ("torch", "rnn_tanh_cell", "torch.rnn_tanh_cell"),
    ("torch", "lstm_cell", "torch.lstm_cell"),
    ("torch", "gru_cell", "torch.gru_cell"),
    ("torch._C._nn", "cross_entropy_loss", "torch._C._nn.cross_entropy_loss"),
    ("torch._C._nn", "scaled_dot_product_attention", "torch._C._nn.scaled_dot_product_attention"),
]

_violations = []
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
    for owner_path, attr, label in FORBIDDEN:
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


def main(rfd, wfd, scratch, data_mb=0):
    wire = sys.modules["_ag_wire"]
    import torch

    torch.set_num_threads(1)
    if data_mb:
        limit_private_memory(data_mb)
    sys.path.insert(0, scratch)
    os.chdir(scratch)
    install_guards()

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
            n = os.write(wfd, view)
            view = view[n:]

    def to_device(data, device, requires_grad):
        return data.to(device)

    main_pid = os.getpid()
    send({"ready": True, "torch": torch.__version__, "cuda": bool(torch.cuda.is_available())})
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
            try:
                modules[name] = importlib.import_module(name)
                if os.getpid() != main_pid:
                    os._exit(0)
                verify_guards()
                send({"id": req["id"], "ok": True, "violations": list(_violations)})
            except BaseException as e:  # SystemExit and KeyboardInterrupt included
                send({"id": req["id"], "ok": False, "error": describe_error(e, scratch),
                      "violations": list(_violations)})
        elif op == "call":
            resp = run_call(req, modules, scratch, torch)
            if os.getpid() != main_pid:  # a process the student forked must never answer
                os._exit(0)
            send(resp)
        else:
            os._exit(71)


def run_call(req, modules, scratch, torch):
    inputs = req["inputs"]
    outs = []
    results = []
    for step in req["steps"]:
        del _violations[:]
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
                    args.append(inputs[a["in"]])
                elif "dict" in a:
                    p = a["dict"]
                    args.append({k[len(p):]: v for k, v in inputs.items() if k.startswith(p)})
                else:
                    args.append(outs[a["step"]][a["index"]])
            start = time.perf_counter()
            out = fn(*args)
            if any(t.is_cuda for t in inputs.values() if type(t) is torch.Tensor):
                torch.cuda.synchronize()
            res["seconds"] = time.perf_counter() - start
        except BaseException as e:
            res["error"] = describe_error(e, scratch)
            verify_guards()
            res["violations"] = list(_violations)
            break
        verify_guards()
        res["violations"] = list(_violations)
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
    return {"id": req["id"], "steps": results, "inputs_after": inputs}
