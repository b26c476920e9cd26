"""The vectorisation check: a function far slower than the reference loses a small visible check.

The assignment asks for loops over time only: every step works on the whole batch at once. A
Python loop over the batch (or over hidden units) gives the right numbers and takes N times as
long. Each function whose registry entry declares `speed` sizes gets one more check, "vectorised:
within FACTORx the reference's time", of weight WEIGHT (a fraction of one ordinary check):

- the input: the function's own maker at those sizes, float32 on the CPU (`prepare`, called by
  plans.build_plan, makes one per plan), drawn again from an unpredictable seed for every timed
  request: nothing can be computed before a request comes or remembered from an earlier one;
- the student's time: the worker process's CPU time as the kernel counts it (every thread, ended
  ones included), read by the grader right before it sends a "call" request of CALLS calls, each on
  inputs of its own (steps.call_request), and right after the answer comes, less the request's fixed
  cost (decoding the request, sending the values back: as a dry request costs, never more than the
  grader's own time for that work on its own copy of it). Nothing in the worker, whose clocks and
  reported "seconds" are the student's to replace, can shorten it; a loaded machine or a CPU quota
  delays the worker without adding to it. A backward is timed without its forward: an untimed request has the student's forward
  build the cache and send it back, and the timed request carries it as an input, with CALLS calls of
  the backward on it, each with a fresh gradient (a cache the wire format cannot carry: the forward
  runs first in the timed request, and in the reference's time too). Nothing the student's code runs
  is ever subtracted;
- the answers of the timed calls are compared with the reference's on the same inputs: a wrong one
  (a shortcut where the batch is large, a remembered answer) or a forbidden operator, and the check
  is not credited. So is a measurement while the sandbox user runs other processes;
- the reference's time: the reference solution (Plan's reference folder: the kit's solutions/) called here,
  in the trusted grading process, timed on this thread's CPU time. It is never loaded into the
  worker: student code could read it back from there (in an exception message, for one). It runs
  with one thread, as the worker does, and under the worker's own operator observer (worker.Observer),
  so that both sides pay the same overhead per tensor operation;
- student and reference calls alternate, REPEATS rounds of each, and the fastest of each side are
  compared. Over FACTOR, CONFIRM more rounds are made first, each one able to bring the ratio back
  under. Where the kernel refuses the worker's CPU-time clock (not Linux), both sides are timed on
  the grader's wall clock instead (noisier, and still out of the student's reach).

The check runs only for a function that returned something on every one of its other checks
(right or wrong values: it is about speed) and passed at least one of them on inputs drawn at grading
time (outcome.fresh_pass); otherwise, and for a function that uses a forbidden API, it is not run and
not credited. A call that times out or kills the worker costs this check only (the session restarts
the worker, as for any check).

The public checker has no reference solution to time (none ships to students): its Timings carry the
reference's count of tensor operations on the check's input instead (Timing.reference_ops, computed by
`make student`), and `counted` compares the student's count with it, under the same name, FACTOR and
advice. At these sizes a call costs about its operations: a loop over the batch makes N times as many.
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
from typing import Dict, Optional

import torch

from . import compare, wire
from .feedback import format_error, unpack
from .results import NOT_CREDITED
from .sandbox import WorkerLost
from .outcome import CheckResult, fresh_pass
from .spec import CACHE, Case, DictArg, GradedFunction
from .steps import build_steps, call_args, call_request, dict_arg
from .worker import Observer, count_lines, to_numpy  # the worker's operator observer, run here on the reference

# How much slower than the reference the student's call may be. Measured with tools/speed_ratios.py
# (python -m autograder grade SUBMISSION, 19 timed functions, 2 cores with three busy-looping processes
# beside the grading): the reference graded as the student reached 4.5 at worst (hard_attention_backward,
# whose answer is large beside its work: sending it back weighs most), 3 for every other function; a
# Python loop over the batch at the declared sizes is 19x (one index per row: word_embedding_forward) to
# 45x (the RNN's step per example). (Before each request held CALLS calls and its steps' deny-lists were
# sent once, a request's own cost weighed so much on the cheapest calls that the reference reached 10.5x
# on a loaded CI machine.)
FACTOR = 10.0
REPEATS = 3  # rounds: one timed request of each side per round
CONFIRM = 6  # more rounds when the first REPEATS find the student over FACTOR ...
CONFIRM_UNDER = 0.1  # ... and the student's fastest call under this (seconds): more is not noise
CONFIRM_WITHIN = 2.0  # ... and a ratio within this many times FACTOR (a loop over the batch is 20x to 45x)
WEIGHT = 0.5  # of one ordinary check
# Reference times below this count as this much: a call of a few microseconds is mostly fixed
# overhead (the request, the observer's push and pop), which no student code can avoid.
FLOOR = 50e-6
# The public checker's counterpart of FLOOR (counted): reference counts below this count as this much. A
# tensor operation costs 5-8 us at these sizes, and the cheapest references make 2 (temporal_affine_forward:
# a loop over its 4 time steps, which the assignment allows, makes 17).
OPS_FLOOR = 8
NAME = "vectorised: within %gx the reference's time" % FACTOR


@dataclass
class Timing:
    """One function's vectorisation check, ready to run: its input (float32, CPU) and its case."""

    fn: GradedFunction
    case: Case  # NAME at the function's `speed` sizes; case.label names the check
    inputs: Dict[str, object]
    reference: Optional[str]  # the reference solution's file, which the student's time is compared with
    forward: Optional[GradedFunction] = None  # fn's forward (a backward's cache), as plans.Prepared.forward
    # The public checker's instead of a reference to time: the reference's tensor operations on `inputs`
    # (reference_ops, computed by `make student`), which the student's count is compared with (counted).
    reference_ops: Optional[int] = None
    track: str = "torch"  # plans.TRACKS: the NumPy track's reference takes and returns NumPy arrays


def prepare(functions, reference, known, track="torch"):
    """The Timings of `functions` that declare speed sizes, against the reference solutions in the folder
    `reference` (none where it is None or holds no file of theirs; the track's: plans.build_plan). known:
    {name: GradedFunction} where a backward's forward is found (plans.build_plan)."""
    out = []
    with one_thread():  # small tensors: a second thread only waits for a busy core (0.15 s instead of 0.03 s)
        for fn in functions:
            path = _reference_path(reference, fn.file)
            if not fn.speed or path is None:
                continue
            case = Case(NAME, dict(fn.speed), torch.float32, weight=WEIGHT)
            made = fn.make(torch.Generator().manual_seed(zlib.crc32(fn.name.encode())), case)
            inputs = {k: (v.to(torch.float32) if torch.is_tensor(v) and v.is_floating_point() else v)
                      for k, v in made.items()}
            out.append(Timing(fn, case, inputs, path, known[fn.forward] if fn.forward else None, track=track))
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
                out[timing.fn.name] = [_judged(session, timing, res, deadline)]
    return out


def _judged(session, timing, res, deadline):
    """The check's result: timed against the reference (check), or counted (the public checker's plans)."""
    refused = _not_runnable(timing, res)
    if refused:
        return refused
    try:
        return (check if timing.reference_ops is None else counted)(session, timing, deadline)
    except _NotChecked as e:
        return _result(timing, False, "not checked: %s" % e)
    except WorkerLost as e:
        session.lost()
        return _result(timing, False, "not checked: on this check's larger input, %s" % e.reason)


def _ensure_modules(session, timing):
    """The function's file (and its forward's) imported in a live worker; _NotChecked where it cannot be."""
    fn = timing.fn
    where = session.where
    for module in ([where.get(timing.forward.name, timing.forward.file)] if fn.forward else []) + \
            [where.get(fn.name, fn.file)]:
        err = session.ensure(module)
        if err:
            raise _NotChecked(err)


class _NotChecked(Exception):
    pass


ADVICE = ("Loop over time steps only; do the batch (and hidden units) as tensor operations: a Python loop over "
          "the batch, here or in a function it calls, is the usual cause.")


def _result(timing, passed, message=""):
    if timing.track == "numpy":
        message = compare.numpy_words(message)
    return CheckResult(timing.case.label, False, timing.case.weight, passed, message)


def _not_runnable(timing, res):
    """Why the check is not run on this function (a CheckResult), or None."""
    fn = timing.fn
    if res.forbidden:
        return _result(timing, False, "not checked: %s uses an API this assignment does not allow" % fn.name)
    # Fast and wrong everywhere (a stub returning zeros) earns nothing, nor does a table of the release's
    # public answers: only a check passed on inputs drawn at grading time counts (outcome.fresh_pass).
    if not fresh_pass(res.checks):
        return _result(timing, False, NOT_CREDITED)
    if not all(c.passed or c.value_mismatch is not None for c in res.checks):
        return _result(timing, False, "not checked: %s did not return a value on every check above (it raised, "
                                      "timed out or could not be imported); the timing needs a function that "
                                      "runs" % fn.name)
    return None


def check(session, timing, deadline):
    """The grader's vectorisation check: the student's time against the reference's (measure)."""
    fn = timing.fn
    mine, theirs, rounds = measure(session, timing, deadline)
    ratio = mine / max(theirs, FLOOR)
    if ratio <= FACTOR:
        return _result(timing, True)
    own = " (its own call: the forward that builds the cache is not counted)" if fn.forward else ""
    return _result(timing, False, (
        "%s is %.1fx slower than the reference solution on this check's input: %s against %s a call (the "
        "fastest of %d rounds of %d calls each, one thread%s; allowed: %gx). %s"
        % (fn.name, ratio, _ms(mine), _ms(max(theirs, FLOOR)), rounds, CALLS, own, FACTOR, ADVICE)))


def counted(session, timing, deadline):
    """The public checker's vectorisation check, which has no reference solution to time: the student's
    tensor operations (as the worker's operator observer counts them, worker.Observer) in one call on the
    check's input, against the reference's on the same input (Timing.reference_ops). At these sizes a call
    costs about its operations (tools/speed_ratios.py), and a loop over the batch makes N times as many.
    The student's own machine runs it: nothing here needs to be out of the student's reach."""
    fn = timing.fn
    if time.monotonic() > deadline:
        raise _NotChecked("the overall time budget ran out")
    _ensure_modules(session, timing)
    program = build_steps(timing, session.where)
    lines = timing.track == "numpy"  # NumPy's operators pass no observer: the lines of Python run are counted
    resp = session.worker.request(call_request(dict(timing.inputs), program, inputs_after=False, track=timing.track,
                                               count_lines=lines),
                                  session.timeout(), "in %s, on the larger input of this check" % fn.name)
    _student_outputs(fn, resp, len(program), bool(fn.forward))
    ops = resp["steps"][-1].get("ops")
    if type(ops) is not int or not 0 <= ops <= 10 ** 12:
        raise _NotChecked("the worker's answer was malformed")
    ratio = ops / max(timing.reference_ops, OPS_FLOOR)
    if ratio <= FACTOR:
        return _result(timing, True)
    unit = "lines of Python run" if lines else "tensor operations"
    return _result(timing, False, (
        "%s is %.1fx slower than the reference solution on this check's input, counted in %s: "
        "%d against %d a call (check.py counts them; Gradescope times the calls; allowed: %gx). %s"
        % (fn.name, ratio, unit, ops, max(timing.reference_ops, OPS_FLOOR), FACTOR, ADVICE)))


def reference_ops(timing):
    """The tensor operations of the reference's own call on timing.inputs (a backward's forward is not
    counted), under the worker's observer; in the NumPy track, the lines of the reference file run in that
    call (worker.count_lines): what the public checker compares a student's count with
    (Timing.reference_ops; `make student` computes it)."""
    with one_thread():
        return _reference_run(timing, [timing.inputs], _Clock(None), True, count=timing.track == "numpy")[3]


def _ms(seconds):
    return "%.3g ms" % (seconds * 1e3)


def measure(session, timing, deadline):
    """(student's seconds per call, reference's seconds per call, rounds): the fastest of alternating rounds.

    Nothing here reads a clock the student's code can touch. The worker's time is its CPU time as the
    kernel counts it (_Clock), read by the grader right before sending a request and right after its
    answer came: every thread of the worker, ended ones included. Every round draws fresh inputs at the
    speed sizes, so nothing can be computed before the request or remembered from an earlier one, and
    the values returned are compared with the reference's on them: a call that takes a shortcut on this
    input (zeros, a remembered answer, a forbidden operator) is not credited. Each round:
    - for a backward, an untimed request runs its forward and sends its cache back (`_cache_to_send`);
    - the timed request holds CALLS calls, each on inputs of its own (a backward: on that one cache,
      each with a fresh gradient; `_program`), which the reference makes too;
    - a dry request first: the timed request itself, which the worker decodes and answers without
      running a step. Its time plus the grader's own time to frame the values the timed request
      returns (`_framing`) is the request's fixed cost, capped by the grader's own time to decode that
      request and frame that answer (`_decoding`, `_framing`: on data the grader made, never time
      measured across an exchange, which a worker can lengthen by sleeping or by sending frames the
      grader decodes): student code can slow the dry request down on purpose, and only time the grader
      can vouch for is subtracted;
    - the reference's run on the same inputs, timed on this thread's CPU time.
    The student's time is the fastest timed request less the smallest fixed cost; both sides are divided
    by the calls per request.
    """
    fn, fwd = timing.fn, timing.forward
    program = build_steps(timing, session.where)
    _reference_run(timing, [timing.inputs], _Clock(None), True)  # warm-up: the first call at new sizes pays the allocator
    clock, diluted = None, None
    real, dry, replay, framing, theirs = [], [], [], [], []

    def estimate():
        fixed = min(min(dry) + min(framing), min(replay))
        return max(min(real) - fixed, 0.0) / CALLS, min(theirs) / CALLS

    for done in range(REPEATS + CONFIRM):
        if done >= REPEATS:
            mine, ref = estimate()
            ratio = mine / max(ref, FLOOR)  # as check computes it
            if ratio <= FACTOR or ratio > CONFIRM_WITHIN * FACTOR or mine > CONFIRM_UNDER:
                break
        if time.monotonic() > deadline:
            raise _NotChecked("the overall time budget ran out")
        inputs = _fresh_inputs(timing)
        _ensure_modules(session, timing)
        _alone(session, fn)
        if clock is None:
            clock = _Clock(session.worker.proc.pid)
        what = "in %s, on the larger input of this check" % fn.name
        cache = None
        if fn.forward and not diluted:
            cache = _cache_to_send(session, timing, program[0], inputs, what)
            if diluted is None:
                diluted = cache is _UNSENDABLE
            elif cache is _UNSENDABLE:
                raise _NotChecked("%s's cache could be sent back to the grader on one round and not on another"
                                  % fn.forward)
        sent, steps, per_call = _program(fn, program, inputs, _UNSENDABLE if diluted else cache)
        request = call_request(sent, steps, inputs_after=False, track=timing.track)
        seconds, resp = _timed_request(session, clock, dict(request, dry=True), what)
        if not isinstance(resp, dict) or resp.get("steps") != []:
            raise _NotChecked("the worker's answer was malformed")
        dry.append(seconds)
        seconds, resp = _timed_request(session, clock, request, what)
        _alone(session, fn)
        got = _student_outputs(fn, resp, len(steps), bool(diluted))
        if clock.cpu and seconds <= 0:  # the pid is not the process that ran the call
            raise _NotChecked("the worker's CPU time could not be read")
        real.append(seconds)
        seconds, fwd_out, own_outs, _ = _reference_run(timing, per_call, clock, bool(diluted))
        theirs.append(seconds)
        _verify(fn, timing.case, got, own_outs)
        returned = ([_as_returned(fwd, fwd_out)] if diluted else []) + \
            [_as_returned(fn, out) for out in own_outs]
        seconds_out = _framing(clock, returned)
        framing.append(seconds_out)
        replay.append(_decoding(clock, request) + seconds_out)
    mine, ref = estimate()
    return mine, ref, len(real)


# Calls per timed request (a backward's: on one cache): a call of 20 us is then not lost in the request's
# own cost (sending its inputs and its answers through the pipes), as it would be alone.
CALLS = 8
CACHE_INPUT = "#cache"  # the name of the cache among a backward's inputs, when it was sent back
_SEEDS = random.SystemRandom()  # the fresh inputs' seeds: unpredictable, and the global generators untouched
_UNSENDABLE = object()


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


def _timed_request(session, clock, request, what):
    """(the worker's time for one "call" request, its answer). A request with "dry" is decoded whole, its
    steps included, and answered without running them (worker.run_call)."""
    worker = session.worker
    pid = worker.proc.pid
    start = clock.worker(pid)
    resp = worker.request(request, session.timeout(), what)
    return clock.worker(pid) - start, resp


def _fresh_inputs(timing):
    """New inputs at the check's sizes (as prepare makes them), from an unpredictable seed."""
    made = timing.fn.make(torch.Generator().manual_seed(_SEEDS.getrandbits(62)), timing.case)
    return {k: (v.to(torch.float32) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in made.items()}


def _cache_to_send(session, timing, forward_step, inputs, what):
    """The cache the student's forward builds on `inputs` (an untimed request), ready to be sent as an
    input: tensors as tensors; _UNSENDABLE where it holds what the wire format does not carry."""
    fn, fwd = timing.fn, timing.forward
    resp = session.worker.request(call_request(inputs, [dict(forward_step, skip=[])], track=timing.track),
                                  session.timeout(), what)
    _alone(session, fn)
    _student_outputs(fwd, resp, 1, False, judged=False)
    value = resp["steps"][0].get("value")
    if type(value) not in (tuple, list) or len(value) != len(fwd.returns):
        raise _NotChecked("%s did not return normally on this check's larger input" % fwd.name)
    return _sendable(value[fwd.returns.index(CACHE)])


def _sendable(x):
    """A value the worker sent, as a value to send back (its tensors as tensors), or _UNSENDABLE."""
    if isinstance(x, wire.Received):
        return x.data
    if type(x) in (tuple, list):
        items = [_sendable(v) for v in x]
        return _UNSENDABLE if any(v is _UNSENDABLE for v in items) else type(x)(items)
    if type(x) is dict:
        items = {k: _sendable(v) for k, v in x.items()}
        return _UNSENDABLE if any(v is _UNSENDABLE for v in items.values()) else items
    if x is None or type(x) in (bool, int, float, str):
        return x
    return _UNSENDABLE


def _program(fn, program, inputs, cache):
    """(the timed request's inputs, its steps, each own call's inputs by their names) of fn on `inputs`.

    program: build_steps' (a backward's forward, then its own call). A forward: its one call. A backward:
    CALLS calls on one cache, the k-th (k >= 1) with fresh values of its other floating-point
    arguments (the gradient flowing in: same shape and scale), each call's arguments sent under names of
    their own ("#k:dh"): no call can reuse another's answer. The cache is the student's forward's, sent
    as an input (CACHE_INPUT) when `_cache_to_send` could. When it could not (_UNSENDABLE: an object of
    the student's own class, a torch.Size, a namedtuple ...), the request runs the forward first, and the
    reference's time includes its forward too: one part in CALLS + 1 on both sides. Nothing
    the student's code runs is ever subtracted: student code could inflate what is subtracted (slow the
    request down that measures it) and so hide a loop in what is kept.
    """
    own = program[-1]
    if not fn.forward:
        sent, steps, cache_arg = {}, [], None
    elif cache is _UNSENDABLE:
        sent, steps, cache_arg = dict(inputs), list(program[:-1]), None
    else:
        sent, steps, cache_arg = {CACHE_INPUT: cache}, [], {"in": CACHE_INPUT}
    per_call = []
    generator = torch.Generator().manual_seed(_SEEDS.getrandbits(62))
    for k in range(CALLS):
        tag, mine, args = "#%d:" % k, dict(inputs), []
        for a, arg in zip(fn.args, own["args"]):
            if a == CACHE:
                arg = cache_arg or arg
            elif isinstance(a, DictArg):
                sent.update((tag + a.prefix + name, v) for name, v in dict_arg(a.prefix, inputs).items())
                arg = {"dict": tag + a.prefix}
            else:
                v = inputs[a]
                if k and torch.is_tensor(v) and v.is_floating_point():
                    scale = float(v.std()) if v.numel() > 1 else 1.0
                    v = torch.randn(v.shape, generator=generator, dtype=v.dtype) * (scale or 1.0)
                mine[a] = sent[tag + a] = v
                arg = {"in": tag + a}
            args.append(arg)
        per_call.append(mine)
        steps.append(dict(own, args=args))
    return sent, steps, per_call


def _student_outputs(fn, resp, count, forward_first, judged=True):
    """The values of the function's own calls in a request's answer (each: what it returned).
    forward_first: the request's first step is the forward of fn (a backward). judged: whether these
    calls' operators count here (a backward's forward is judged by its own checks, as in runner.evaluate)."""
    steps = resp.get("steps") if isinstance(resp, dict) else None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise _NotChecked("the worker's answer was malformed")
    names = [fn.forward] + [fn.name] * (count - 1) if forward_first else [fn.name] * count
    for index, step in enumerate(steps[:len(names)]):
        name = names[index]
        if not step.get("ok"):
            raise _NotChecked("on this check's larger input, %s raised %s" % (name, format_error(step.get("error"))))
        used = step.get("violations") if judged and not (forward_first and index == 0) else None
        if used:
            used = sorted(set(str(v) for v in used)) if isinstance(used, list) else ["an operator it may not use"]
            raise _NotChecked("on this check's larger input, %s used %s, which this assignment does not allow"
                              % (name, ", ".join(used)))
    if len(steps) != count or any(s.get("bad_structure") for s in steps):
        raise _NotChecked("%s did not return normally on this check's larger input" % fn.name)
    return [s.get("value") for s in steps[1 if forward_first else 0:]]


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
        try:
            return torch.tensor(float(x), dtype=torch.float64)
        except OverflowError:  # an int of 400 digits: a wrong answer, not the grader's failure
            return None
    return None


def _as_returned(fn, out):
    """What the worker sends back of fn's return `out` (its cache left out)."""
    if len(fn.returns) == 1:
        return out
    return tuple(None if r == CACHE else v for r, v in zip(fn.returns, out))


def _decoding(clock, request):
    """The grader's own time, on its clock, to decode the timed request as the worker decodes it: work on
    data the grader made itself, which no answer of the worker's (its size, its timing, frames it adds)
    can lengthen."""
    header, payload = wire.encode(dict(request, id=1))
    with _without_gc():
        start = clock.grader()
        wire.decode(header, payload, lambda data, device, requires_grad: data.to(device))
        return clock.grader() - start


def _framing(clock, returned):
    """The grader's own time, on its clock, to frame `returned` (the values of a timed request's steps:
    the reference's, in their places), as the worker frames the student's."""
    answer = [{"ok": True, "violations": [], "ops": 0, "value": v} for v in returned]
    with _without_gc():
        start = clock.grader()
        wire.frame({"id": 1, "steps": answer, "inputs_after": {}})
        return clock.grader() - start


@contextlib.contextmanager
def _without_gc():
    """No collection of the grader's large heap inside a time it measures. Switched back on only where it
    was on (another grading thread of grade-batch may have switched it off)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# --------------------------------------------------------------------------- the reference
_MODULES = {}
_LOADING = threading.Lock()  # grading threads of grade-batch may ask at once


def _reference_path(folder, file):
    """The reference solution of `file` in `folder` (None where either is missing)."""
    path = os.path.join(folder, file + ".py") if folder else None
    return path if path and os.path.isfile(path) else None


def reference_module(path):
    """The reference solution file at `path`, imported under a private name (never as the student's module)."""
    with _LOADING:
        if path not in _MODULES:
            name = "_reference_" + os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _MODULES[path] = module
        return _MODULES[path]


def _reference_run(timing, per_call, clock, forward_timed, count=False):
    """(seconds, forward's return or None, [own returns], the last own call's tensor operations) of the
    reference, timed on clock.grader(): for a backward, its forward on per_call[0] (timed when forward_timed:
    as when the request runs it), then one call on that cache per entry of per_call; each call under the
    observer mode, which counts its operations (count: the lines of the reference file run instead,
    worker.count_lines)."""
    fn, fwd = timing.fn, timing.forward
    module = reference_module(timing.reference)
    numpy_track = timing.track == "numpy"
    if numpy_track:  # what the worker hands the student's functions (worker.to_numpy), made before the clock starts
        per_call = [to_numpy(inputs) for inputs in per_call]
    outs = []
    with _without_gc():
        start = clock.grader()
        fwd_out = cache = None
        if fn.forward:
            with Observer(fwd.forbidden_ops):  # the worker's observer: the same work per operator
                fwd_out = getattr(module, fwd.name)(*call_args(fwd, per_call[0]))
            cache = fwd_out[fwd.returns.index(CACHE)]
            if not forward_timed:
                start = clock.grader()
        for inputs in per_call:
            own = call_args(fn, inputs, cache)
            observer = Observer(fn.forbidden_ops)
            with observer:
                if count:
                    out, observer.count = count_lines(getattr(module, fn.name), own, timing.reference)
                    outs.append(out)
                else:
                    outs.append(getattr(module, fn.name)(*own))
        seconds = clock.grader() - start
    if numpy_track:  # compared and framed as the student's answers come: tensors (wire.Received's data)
        fwd_out, outs = as_torch(fwd_out), [as_torch(out) for out in outs]
    return seconds, fwd_out, outs, observer.count


def as_torch(x, depth=0):
    """A NumPy reference's return with its arrays and NumPy scalars as tensors (copies), as wire.py decodes them."""
    import numpy

    if type(x) is numpy.ndarray or isinstance(x, numpy.generic):
        return torch.from_numpy(numpy.array(x))
    if type(x) in (tuple, list) and depth < wire.MAX_DEPTH:
        return type(x)(as_torch(v, depth + 1) for v in x)
    if type(x) is dict and depth < wire.MAX_DEPTH:
        return {k: as_torch(v, depth + 1) for k, v in x.items()}
    return x
