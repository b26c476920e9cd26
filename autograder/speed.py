"""The vectorisation check: a function far slower than the reference loses a small visible check.

The assignment asks for loops over time only: every step works on the whole batch at once. A
Python loop over the batch (or over hidden units) gives the right numbers and takes N times as
long. Each function whose registry entry declares `speed` sizes gets one more check, "vectorised:
within FACTORx the reference's time", of weight WEIGHT (a fraction of one ordinary check):

- the input: the function's own maker at those sizes, float32 on the CPU, made once per plan
  (`prepare`, called by runner.build_plan);
- the student's time: the worker's per-step "seconds" of the function's own call (for a backward,
  the last step: the forward that builds its cache is not counted), through the usual "call"
  request (runner.build_steps);
- the reference's time: the reference solution (solutions/ under runner.KIT_ROOT) called here,
  in the trusted grading process. It is never loaded into the worker: student code could read it
  back from there (in an exception message, for one). It runs with one thread, as the worker
  does, and under a torch-function mode that does per operator what the worker's operator
  observer does, so that both sides pay the same overhead per tensor operation;
- student and reference calls alternate, REPEATS of each, and the fastest of each side are compared
  (a loaded machine only ever adds time: a call preempted for a time slice takes 10-20 ms more).
  Over FACTOR, CONFIRM more rounds are made first, each one able to bring the ratio back under.

The check runs only for a function that returned something on every one of its other checks
(right or wrong values: it is about speed) and passed at least one of them; otherwise, and for a
function that uses a forbidden API, it is not run and not credited. A call that times out or kills
the worker costs this check only (the session restarts the worker, as for any check). The public
checker's plans carry no Timings: it never runs this check.
"""
import contextlib
import gc
import importlib.util
import os
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Dict

import torch
from torch.overrides import TorchFunctionMode

from . import registry
from .feedback import NOT_CREDITED, format_error
from .sandbox import WorkerLost
from .spec import CACHE, Case, DictArg, GradedFunction
from .worker import _op_name  # the observer's own naming of an operator

# How much slower than the reference the student's call may be. Measured with the reference graded
# as the student (python -m autograder grade solutions, 2 cores, two to four gradings at once plus a
# busy loop and other people's test runs): over 80 gradings (19 functions each) the ratio of the
# fastest calls reached 3.7 at worst (birnn_backward) and never needed CONFIRM, while the ratio of
# the medians of 3 reached 32 (word_embedding_backward: 0.1 ms calls, two of three preempted).
# A Python loop over the batch at the declared sizes is 17x (one gather per row) to 80x.
FACTOR = 10.0
REPEATS = 3  # rounds: one call of each side per round
CONFIRM = 6  # more rounds when the first REPEATS find the student over FACTOR ...
CONFIRM_UNDER = 0.1  # ... and the student's fastest call under this (seconds): more is no time slice's noise
WEIGHT = 0.5  # of one ordinary check
# Reference times below this count as this much: a call of a few microseconds is mostly fixed
# overhead (the request, the observer's push and pop), which no student code can avoid.
FLOOR = 50e-6
NAME = "vectorised: within %gx the reference's time" % FACTOR


@dataclass
class Timing:
    """One function's vectorisation check, ready to run: its input (float32, CPU) and its case."""

    fn: GradedFunction
    case: Case  # NAME at the function's `speed` sizes; case.label names the check
    inputs: Dict[str, object]


def prepare(functions):
    """The Timings of `functions` that declare speed sizes (none where solutions/ is absent)."""
    out = []
    with one_thread():  # small tensors: a second thread only waits for a busy core (0.15 s instead of 0.03 s)
        for fn in functions:
            if not fn.speed or _reference_path(fn.file) is None:
                continue
            case = Case(NAME, dict(fn.speed), torch.float32, weight=WEIGHT)
            made = fn.make(torch.Generator().manual_seed(zlib.crc32(fn.name.encode())), case)
            inputs = {k: (v.to(torch.float32) if torch.is_tensor(v) and v.is_floating_point() else v)
                      for k, v in made.items()}
            out.append(Timing(fn, case, inputs))
    return out


@contextlib.contextmanager
def one_thread():
    """torch on one thread (the worker's setting), then this thread's setting back. With torch's
    OpenMP backend the setting belongs to the calling thread (grade-batch grades in several threads
    of one process): each grading thread sets and restores its own."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(session, plan, results, deadline):
    """{function name: [CheckResult]} of every Timing in the plan (runner.grade calls this)."""
    out = {}
    with one_thread():  # for the reference's calls, as in the worker
        for timing in plan.speed:
            res = results.get(timing.fn.name)
            if res is not None:
                out[timing.fn.name] = [check(session, timing, res, deadline)]
    return out


class _NotChecked(Exception):
    pass


def check(session, timing, res, deadline):
    from .runner import CheckResult

    fn, case = timing.fn, timing.case

    def result(passed, message=""):
        return CheckResult(case.label, False, case.weight, passed, message)

    if res.forbidden:
        return result(False, "not checked: %s uses an API this assignment does not allow" % fn.name)
    if not any(c.passed for c in res.checks):  # fast and wrong everywhere (a stub returning zeros) earns nothing
        return result(False, NOT_CREDITED)
    if not all(c.passed or c.value_mismatch is not None for c in res.checks):
        return result(False, "not checked: %s did not return a value on every check above (it raised, timed "
                             "out or could not be imported); the timing needs a function that runs" % fn.name)
    try:
        mine, theirs, calls = measure(session, timing, deadline)
    except _NotChecked as e:
        return result(False, "not checked: %s" % e)
    except WorkerLost as e:
        session.lost()
        return result(False, "not checked: on this check's larger input, %s" % e.reason)
    ratio = mine / max(theirs, FLOOR)
    if ratio <= FACTOR:
        return result(True)
    own = " (its own call: the forward that builds the cache is not counted)" if fn.forward else ""
    return result(False, (
        "%s is %.1fx slower than the reference solution on this check's input: %s against %s (the fastest of "
        "%d calls each, one thread%s; allowed: %gx). Loop over time steps only; do the batch (and hidden "
        "units) as tensor operations: a Python loop over the batch, here or in a function it calls, is the "
        "usual cause." % (fn.name, ratio, _ms(mine), _ms(max(theirs, FLOOR)), calls, own, FACTOR)))


def _ms(seconds):
    return "%.3g ms" % (seconds * 1e3)


def measure(session, timing, deadline):
    """(student's fastest seconds, reference's fastest seconds, calls of each): alternating rounds."""
    from .runner import build_steps

    fn = timing.fn
    modules = ([registry.BY_NAME[fn.forward].file] if fn.forward else []) + [fn.file]
    steps = build_steps(timing)
    reference = _reference_call(fn, timing.inputs)
    reference()  # warm-up: the first call at new sizes pays the allocator
    mine, theirs = [], []
    for done in range(REPEATS + CONFIRM):
        if done >= REPEATS and (min(mine) <= FACTOR * max(min(theirs), FLOOR) or min(mine) > CONFIRM_UNDER):
            break
        if time.monotonic() > deadline:
            raise _NotChecked("the overall time budget ran out")
        for module in modules:
            err = session.ensure(module)
            if err:
                raise _NotChecked(err)
        resp = session.worker.request({"op": "call", "inputs": timing.inputs, "steps": steps},
                                      session.timeout(), "in %s, on the larger input of this check" % fn.name)
        if session.strays():
            session.lost()
        mine.append(_student_seconds(fn, resp, len(steps)))
        theirs.append(reference())
    return min(mine), min(theirs), len(mine)


def _student_seconds(fn, resp, count):
    steps = resp.get("steps") if isinstance(resp, dict) else None
    if not isinstance(steps, list) or not steps:
        raise _NotChecked("the worker's answer was malformed")
    for step, name in zip(steps, ([fn.forward] if fn.forward else []) + [fn.name]):
        if not isinstance(step, dict) or not step.get("ok"):
            raise _NotChecked("on this check's larger input, %s raised %s" % (
                name, format_error(step.get("error") if isinstance(step, dict) else None)))
    seconds = steps[-1].get("seconds")
    if len(steps) != count or steps[-1].get("bad_structure") or not isinstance(seconds, (int, float)):
        raise _NotChecked("%s did not return normally on this check's larger input" % fn.name)
    return float(seconds)


# --------------------------------------------------------------------------- the reference
_MODULES = {}
_LOADING = threading.Lock()  # grading threads of grade-batch may ask at once


def _reference_path(file):
    from . import runner

    path = os.path.join(runner.KIT_ROOT, "solutions", file + ".py")
    return path if os.path.isfile(path) else None


def reference_module(file):
    """The reference solution file, imported under a private name (never as the student's module)."""
    with _LOADING:
        if file not in _MODULES:
            spec = importlib.util.spec_from_file_location("_reference_" + file, _reference_path(file))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _MODULES[file] = module
        return _MODULES[file]


class _Observed(TorchFunctionMode):
    """Per operator, the work of the worker's observer (worker.install_observer), and nothing else."""

    def __init__(self, deny):
        super().__init__()
        self.deny, self.seen = deny, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        label = self.deny.get(_op_name(func))
        if label is not None and label not in self.seen:
            self.seen.append(label)
        if any(t is not torch.Tensor for t in types) and "subclass" not in self.seen:
            self.seen.append("subclass")
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.requires_grad and "autograd" not in self.seen:
            self.seen.append("autograd")
        return out


def _reference_call(fn, inputs):
    """A function that calls the reference on `inputs` once and returns the seconds of fn's own call."""
    module = reference_module(fn.file)

    def args(f, cache=None):
        out = []
        for a in f.args:
            if isinstance(a, DictArg):
                out.append({k[len(a.prefix):]: v for k, v in inputs.items() if k.startswith(a.prefix)})
            else:
                out.append(cache if a == CACHE else inputs[a])
        return out

    def call():
        cache = None
        if fn.forward:
            fwd = registry.BY_NAME[fn.forward]
            with _Observed(fwd.forbidden_ops):
                cache = getattr(module, fwd.name)(*args(fwd))[fwd.returns.index(CACHE)]
        own = args(fn, cache)
        collecting = gc.isenabled()
        gc.disable()  # a collection of the grader's large heap is no part of the reference's time
        try:
            start = time.perf_counter()
            with _Observed(fn.forbidden_ops):
                getattr(module, fn.name)(*own)
            return time.perf_counter() - start
        finally:
            if collecting:  # (another grading thread may have switched it off: it switches it back)
                gc.enable()

    return call
