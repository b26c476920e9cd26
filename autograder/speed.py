"""The vectorisation check: a function far slower than the reference loses a small visible check.

The assignment asks for loops over time only: every step works on the whole batch at once. A
Python loop over the batch (or over hidden units) gives the right numbers and takes N times as
long. Each function whose registry entry declares `speed` sizes gets one more check, "vectorised:
within FACTORx the reference's time", of weight WEIGHT (a fraction of one ordinary check):

- the input: the function's own maker at those sizes, float32 on the CPU (`prepare`, called by
  runner.build_plan, makes one per plan), drawn again from an unpredictable seed for every timed
  request: nothing can be computed before a request comes or remembered from an earlier one;
- the student's time: the worker process's CPU time as the kernel counts it (every thread, ended
  ones included), read by the grader right before it sends the "call" request (runner.build_steps)
  and right after the answer comes, less the request's fixed cost (decoding the inputs, sending
  values back: never more than the grader's own time for that work). Nothing in the worker, whose
  clocks and reported "seconds" are the student's to replace, can shorten it; a loaded machine or a
  CPU quota delays the worker without adding to it. A backward's request holds its forward once and
  BACKWARD_CALLS calls of its own on that cache, each with a fresh gradient; the reference does the
  same, so the forward weighs little on either side and nothing the student's code runs is subtracted;
- the answers of the timed calls are compared with the reference's on the same inputs: a wrong one
  (a shortcut where the batch is large, a remembered answer) or a forbidden operator, and the check
  is not credited. So is a measurement while the sandbox user runs other processes;
- the reference's time: the reference solution (solutions/ under runner.KIT_ROOT) called here,
  in the trusted grading process, timed on this thread's CPU time. It is never loaded into the
  worker: student code could read it back from there (in an exception message, for one). It runs
  with one thread, as the worker does, and under a torch-function mode that does per operator what
  the worker's operator observer does, so that both sides pay the same overhead per tensor operation;
- student and reference calls alternate, REPEATS rounds of each, and the fastest of each side are
  compared. Over FACTOR, CONFIRM more rounds are made first, each one able to bring the ratio back
  under. Where the kernel refuses the worker's CPU-time clock (not Linux), both sides are timed on
  the grader's wall clock instead (noisier, and still out of the student's reach).

The check runs only for a function that returned something on every one of its other checks
(right or wrong values: it is about speed) and passed at least one of them; otherwise, and for a
function that uses a forbidden API, it is not run and not credited. A call that times out or kills
the worker costs this check only (the session restarts the worker, as for any check). The public
checker's plans carry no Timings: it never runs this check.
"""
import contextlib
import gc
import importlib.util
import math
import os
import random
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Dict

import torch
from torch.overrides import TorchFunctionMode

from . import compare, registry, wire
from .feedback import NOT_CREDITED, format_error, unpack
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
    from .runner import CheckResult, fresh_pass

    fn, case = timing.fn, timing.case

    def result(passed, message=""):
        return CheckResult(case.label, False, case.weight, passed, message)

    if res.forbidden:
        return result(False, "not checked: %s uses an API this assignment does not allow" % fn.name)
    # Fast and wrong everywhere (a stub returning zeros) earns nothing, nor does a table of the release's
    # public answers: only a check passed on inputs drawn at grading time counts (runner.fresh_pass).
    if not fresh_pass(res.checks):
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
    """(student's seconds per call, reference's seconds per call, rounds): the fastest of alternating rounds.

    Nothing here reads a clock the student's code can touch. The worker's time is its CPU time as the
    kernel counts it (_Clock), read by the grader right before sending a request and right after its
    answer came: every thread of the worker, ended ones included; a thread or process of the student's
    only adds to it. Every round draws fresh inputs at the speed sizes, so nothing can be computed ahead
    of the request or remembered from an earlier one, and the values returned are compared with the
    reference's on them: a call that takes a shortcut on this input (zeros, a remembered answer, a
    forbidden operator) is not credited. Each round:
    - an empty request (`steps: []`) with the round's inputs: the worker decodes them and sends them
      back. Its time, capped by the grader's own time for that work (a student's code could slow the
      empty request down on purpose: only time the grader can vouch for is subtracted), plus the
      grader's own time to frame the values returned, is the request's fixed cost (`_machinery`);
    - the timed request: the function's call; for a backward, its forward once, then BACKWARD_CALLS
      calls on that one cache, each with a gradient of its own. The reference does the same, so the
      forward weighs about one part in BACKWARD_CALLS + 1 on both sides and is never subtracted (a
      subtraction is what a student's code could inflate, by slowing down the request subtracted);
    - the reference's run on the same inputs, timed on this thread's CPU time.
    The student's time is the fastest request less the fastest fixed cost; both sides are divided by
    the calls per request.
    """
    from .runner import build_steps

    fn = timing.fn
    modules = ([registry.BY_NAME[fn.forward].file] if fn.forward else []) + [fn.file]
    calls = BACKWARD_CALLS if fn.forward else 1
    _reference_run(fn, [timing.inputs], _Clock(None))  # warm-up: the first call at new sizes pays the allocator
    clock = None
    real, empty, vouched, framing, theirs = [], [], [], [], []

    def estimate():
        fixed = min(min(empty), min(vouched)) + min(framing)
        return max(min(real) - fixed, 0.0) / calls, min(theirs) / calls

    for done in range(REPEATS + CONFIRM):
        if done >= REPEATS:
            mine, ref = estimate()
            if mine <= FACTOR * max(ref, FLOOR) or mine > CONFIRM_UNDER:
                break
        if time.monotonic() > deadline:
            raise _NotChecked("the overall time budget ran out")
        sent, steps, per_call = _program(fn, build_steps(timing), _fresh_inputs(timing), calls)
        for module in modules:
            err = session.ensure(module)
            if err:
                raise _NotChecked(err)
        _alone(session, fn)
        if clock is None:
            clock = _Clock(session.worker.proc.pid)
        what = "in %s, on the larger input of this check" % fn.name
        seconds, resp = _timed_request(session, clock, sent, [], what)
        if not isinstance(resp, dict) or resp.get("steps") != []:
            raise _NotChecked("the worker's answer was malformed")
        empty.append(seconds)
        seconds, resp = _timed_request(session, clock, sent, steps, what)
        _alone(session, fn)
        got = _student_outputs(fn, resp, len(steps))
        if clock.cpu and seconds <= 0:  # the pid is not the process that ran the call
            raise _NotChecked("the worker's CPU time could not be read")
        real.append(seconds)
        seconds, fwd_out, own_outs = _reference_run(fn, per_call, clock)
        theirs.append(seconds)
        _verify(fn, timing.case, got, own_outs)
        seconds_in, seconds_out = _machinery(clock, sent, steps, fn, fwd_out, own_outs)
        vouched.append(seconds_in)
        framing.append(seconds_out)
    mine, ref = estimate()
    return mine, ref, len(real)


# A backward's calls per timed request, all on the cache of one call of its forward (the forward's share of
# both sides' times is one part in BACKWARD_CALLS + 1).
BACKWARD_CALLS = 8
_SEEDS = random.SystemRandom()  # the fresh inputs' seeds: unpredictable, and the global generators untouched


class _Clock:
    """The two clocks of a measurement, out of the student's reach.

    cpu (Linux): the worker's is its CPU-time clock (clock_getcpuclockid(pid), nanoseconds): what the
    kernel charged to every thread of the process, ended threads included. A CPU quota or a loaded machine
    delays the worker without adding to it. The grader's is this thread's CPU time (time.thread_time).
    Elsewhere (a kernel that refuses the clock): the grader's wall clock on both sides (noisier: a loaded
    machine adds to it, but student code can only add to it).
    """

    def __init__(self, pid):
        self.cpu = False
        if pid is not None:
            try:
                _process_cpu(pid)
                self.cpu = True
            except (OSError, AttributeError, OverflowError, ValueError):
                pass

    def worker(self, pid):
        return _process_cpu(pid) if self.cpu else time.perf_counter()

    def grader(self):
        return time.thread_time() if self.cpu else time.perf_counter()


def _process_cpu(pid):
    """The CPU seconds of process `pid`, all its threads together (CLOCK_SCHED of its process CPU clock:
    Linux's clock_getcpuclockid(pid), which any process may read)."""
    return time.clock_gettime_ns((~pid << 3) | 2) * 1e-9


def _alone(session, fn):
    """The sandbox user runs nothing but the worker (as root; the worker's seccomp layer denies new
    processes anyway): work done by another process would escape the worker's clock."""
    if session.strays():
        session.lost()
        raise _NotChecked("%s's worker had other processes running beside it: the timing counts the worker's "
                          "own CPU time only" % fn.name)


def _timed_request(session, clock, inputs, steps, what):
    """(the worker's time for one "call" request, its answer)."""
    worker = session.worker
    pid = worker.proc.pid
    start = clock.worker(pid)
    resp = worker.request({"op": "call", "inputs": inputs, "steps": steps}, session.timeout(), what)
    return clock.worker(pid) - start, resp


def _program(fn, steps, inputs, calls):
    """(the timed request's inputs, its steps, each own call's inputs by their names).

    steps: build_steps' program (a backward's forward, then its own call). A backward gets `calls` own
    calls on its forward's one cache, the k-th (k >= 1) with fresh values of its other floating-point
    arguments (the gradient flowing in: same shape and scale), sent under names of its own ("#k:dh"): no
    call can reuse another's answer.
    """
    sent, per_call = dict(inputs), [inputs]
    own, program = steps[-1], steps[:-1] + [steps[-1]]
    generator = torch.Generator().manual_seed(_SEEDS.getrandbits(62))
    for k in range(1, calls):
        mine, args = dict(inputs), []
        for a, arg in zip(fn.args, own["args"]):
            tag = "#%d:" % k
            if "in" in arg:
                v = inputs[a]
                if torch.is_tensor(v) and v.is_floating_point():
                    scale = float(v.std()) if v.numel() > 1 else 1.0
                    v = torch.randn(v.shape, generator=generator, dtype=v.dtype) * (scale or 1.0)
                mine[a] = sent[tag + a] = v
                arg = {"in": tag + a}
            elif "dict" in arg:
                sent.update((tag + name, v) for name, v in inputs.items() if name.startswith(arg["dict"]))
                arg = {"dict": tag + arg["dict"]}
            args.append(arg)
        per_call.append(mine)
        program.append(dict(own, args=args))
    return sent, program, per_call


def _fresh_inputs(timing):
    """New inputs at the check's sizes (as prepare makes them), from an unpredictable seed."""
    made = timing.fn.make(torch.Generator().manual_seed(_SEEDS.getrandbits(62)), timing.case)
    return {k: (v.to(torch.float32) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in made.items()}


def _student_outputs(fn, resp, count):
    """The values of the function's own calls in a timed request's answer (each: what it returned)."""
    steps = resp.get("steps") if isinstance(resp, dict) else None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise _NotChecked("the worker's answer was malformed")
    names = [fn.forward] + [fn.name] * (count - 1) if fn.forward else [fn.name] * count
    for step, name in zip(steps, names):
        if not step.get("ok"):
            raise _NotChecked("on this check's larger input, %s raised %s" % (name, format_error(step.get("error"))))
        used = [str(v) for v in step.get("violations") or []]
        if used:
            raise _NotChecked("on this check's larger input, %s used %s, which this assignment does not allow"
                              % (name, ", ".join(sorted(set(used)))))
    if len(steps) != count or any(s.get("bad_structure") for s in steps):
        raise _NotChecked("%s did not return normally on this check's larger input" % fn.name)
    return [s.get("value") for s in steps[1 if fn.forward else 0:]]


def _verify(fn, case, got, expected):
    """Each of the student's returns against the reference's on the same inputs, with ten times the
    function's float32 tolerance (two float32 computations differ by round-off only: a shortcut is off
    by far more)."""
    rtol = 10 * fn.tolerance(case)
    for value, reference in zip(got, expected):
        values, problem = unpack(fn, value)
        if problem:
            raise _NotChecked("on this check's larger input, " + problem)
        want, _ = unpack(fn, reference)
        for name in fn.outputs:
            err = _value_error(values[name], want[name])
            if not err <= rtol:
                raise _NotChecked(
                    "on this check's larger input (drawn afresh for each timed call), %s returned a wrong %s "
                    "(largest relative error %.3g): only a call that computes its answer is timed" % (fn.name, name, err))


def _value_error(got, expected):
    """The largest relative error (compare.relative_error) of a returned value; inf where its structure differs."""
    if isinstance(expected, dict):
        if type(got) is not dict or set(got) != set(expected):
            return math.inf
        return max([_value_error(got[k], v) for k, v in expected.items()] + [0.0])
    if isinstance(expected, (tuple, list)):
        if type(got) not in (tuple, list) or len(got) != len(expected):
            return math.inf
        return max([_value_error(g, e) for g, e in zip(got, expected)] + [0.0])
    g, e = _as_tensor(got), _as_tensor(expected)
    if g is None or e is None or tuple(g.shape) != tuple(e.shape):
        return math.inf
    return compare.relative_error(g, e)[0]


def _as_tensor(x):
    if isinstance(x, wire.Received):
        return x.data
    if torch.is_tensor(x):
        return x.detach()
    if type(x) in (int, float):
        return torch.tensor(float(x), dtype=torch.float64)
    return None


def _machinery(clock, inputs, steps, fn, fwd_out, own_outs):
    """(seconds, seconds): the grader's own time, on its clock, for the worker's work around the call:
    decoding the request and framing the empty request's answer (its inputs sent back); then framing the
    values a timed request returns (the reference's, in the same places; caches are not sent back)."""
    header, payload = wire.encode({"op": "call", "id": 1, "inputs": inputs, "steps": steps})
    values = []
    if fn.forward:
        fwd = registry.BY_NAME[fn.forward]
        values.append(tuple(None if r == CACHE else v for r, v in zip(fwd.returns, fwd_out)))
    for out in own_outs:
        values.append(out if len(fn.returns) == 1 else tuple(None if r == CACHE else v for r, v in zip(fn.returns, out)))
    answer = [{"ok": True, "violations": [], "value": v} for v in values]
    collecting = gc.isenabled()
    gc.disable()
    try:
        start = clock.grader()
        req = wire.decode(header, payload, lambda data, device, requires_grad: data.to(device))
        wire.frame({"id": 1, "steps": [], "inputs_after": req["inputs"]})
        middle = clock.grader()
        wire.frame({"id": 1, "steps": answer})
        return middle - start, clock.grader() - middle
    finally:
        if collecting:
            gc.enable()


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


def _reference_run(fn, per_call, clock):
    """(seconds, forward's return or None, [own returns]) of the reference, timed on clock.grader():
    for a backward, its forward once on per_call[0], then one call on that cache per entry of per_call
    (as the timed request does); each call under the observer mode."""
    module = reference_module(fn.file)

    def args(f, inputs, cache=None):
        out = []
        for a in f.args:
            if isinstance(a, DictArg):
                out.append({k[len(a.prefix):]: v for k, v in inputs.items() if k.startswith(a.prefix)})
            else:
                out.append(cache if a == CACHE else inputs[a])
        return out

    outs = []
    collecting = gc.isenabled()
    gc.disable()  # a collection of the grader's large heap is no part of the reference's time
    try:
        start = clock.grader()
        fwd_out = cache = None
        if fn.forward:
            fwd = registry.BY_NAME[fn.forward]
            with _Observed(fwd.forbidden_ops):
                fwd_out = getattr(module, fwd.name)(*args(fwd, per_call[0]))
            cache = fwd_out[fwd.returns.index(CACHE)]
        for inputs in per_call:
            own = args(fn, inputs, cache)
            with _Observed(fn.forbidden_ops):
                outs.append(getattr(module, fn.name)(*own))
        return clock.grader() - start, fwd_out, outs
    finally:
        if collecting:  # (another grading thread may have switched it off: it switches it back)
            gc.enable()
