"""The grading loop: prepared checks in, a Report out.

Two stages, kept apart so that a whole class can be graded against one set of hidden inputs:
- `build_plan` (trusted, no student code): for every function x case, make the inputs and ask
  torch's oracle for the expected outputs. Every case draws its inputs from a per-run seed (the
  public checker keeps the public cases' fixed ones: `public_inputs="fixed"`).
- `grade` runs one submission through a sandboxed worker against a plan and scores it.
"""
import os
import random
import shutil
import time
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from . import compare, isolation, speed, static

from .. import registry
from .feedback import NOT_CREDITED, format_error, hints, unpack
from .sandbox import EnvironmentFailure, Limits, Worker, WorkerLost, lease, release, user_processes
from .spec import CACHE, Case, DictArg, GradedFunction
from .submission import locate, make_scratch, shadowing
from .wire import Received

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BUDGET = 480.0  # seconds for one submission: inside Gradescope's default 10 minutes


# --------------------------------------------------------------------------- the plan
@dataclass
class Prepared:
    """One check, ready to send: inputs as the student gets them and torch's answer."""

    fn: GradedFunction
    case: Case
    seed: int
    inputs: Dict[str, torch.Tensor]  # CPU, in the case's dtype (sent to the worker)
    inputs64: Dict[str, torch.Tensor]  # the same values in float64 on the CPU (hints)
    expected: Dict[str, torch.Tensor]  # every output name -> float64 CPU tensor
    # Whether the inputs were drawn from the plan's seed when it was built (never shipped to students):
    # only a passing check on such inputs earns "inputs left unchanged" and "vectorised" (fresh_pass).
    fresh: bool = False


@dataclass
class Plan:
    checks: List[Prepared]
    seed: int
    device: str
    skipped_cuda: bool
    speed: list = field(default_factory=list)  # speed.Timing: the vectorisation checks


def cuda_available():
    return torch.cuda.is_available()


PUBLIC_INPUTS = ("fresh", "fixed")


def build_plan(functions=None, device="auto", seed=None, public_inputs="fresh"):
    """Make inputs and oracle outputs for every case of `functions` (default: all).

    device: "cpu" (CPU cases only), "cuda" (CPU and CUDA cases; CUDA must exist) or "auto"
    (CUDA cases when a GPU is present). seed: the one every drawn input comes from; fresh when None.
    public_inputs: "fresh" (grading: the public cases, at their sizes and kinds, draw their inputs
    from `seed` like the hidden ones, so that no point is earned on the inputs the student release
    ships) or "fixed" (the public cases' own seeds, the release's inputs: feedback only, for the
    public checker and for tests that compare its messages with the grader's). See case_seed.
    """
    functions = registry.FUNCTIONS if functions is None else functions
    if device == "cuda" and not cuda_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    use_cuda = device in ("cuda", "auto") and cuda_available()
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    if use_cuda:  # the oracle computes in full precision on the GPU
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    checks = []
    skipped = False
    for fn in functions:
        shipped = shipped_inputs(fn)
        for case in fn.cases:
            if case.device == "cuda" and not use_cuda:
                skipped = True
                continue
            checks.append(prepare(fn, case, seed, public_inputs, shipped))
    return Plan(checks, seed, "cuda" if use_cuda else "cpu", skipped, speed.prepare(functions))


def case_seed(fn, case, plan_seed, public_inputs="fresh"):
    """The generator seed of one case's inputs.

    Hidden cases, and every case when public_inputs is "fresh": derived from the plan's seed (never
    the public seed, so never the inputs the student release ships). Public cases when public_inputs
    is "fixed": their own fixed seed (what release.py ships to the public checker).
    """
    if public_inputs not in PUBLIC_INPUTS:
        raise ValueError("public_inputs must be one of %s, not %r" % (", ".join(PUBLIC_INPUTS), public_inputs))
    key = zlib.crc32(("%s/%s" % (fn.name, case.name)).encode())
    if case.seed is None:
        return (key ^ plan_seed) & 0x7FFFFFFF
    fixed = key + case.seed
    if public_inputs == "fixed":
        return fixed
    drawn = (key ^ plan_seed) & 0x7FFFFFFF
    return drawn ^ 1 if drawn == fixed else drawn  # one plan seed in 2**31 would give the shipped one


def _is_float(v):
    return torch.is_tensor(v) and v.is_floating_point()


def _draw(fn, case, seed):
    """The inputs of `case` from `seed`, as the student gets them (CPU, floats in the case's dtype)."""
    made = fn.make(torch.Generator().manual_seed(seed), case)
    return {k: (v.to(case.dtype) if _is_float(v) else v) for k, v in made.items()}


def shipped_inputs(fn):
    """The inputs of fn's public cases at their fixed seeds: what the student release ships (release.py)."""
    return [_draw(fn, c, case_seed(fn, c, 0, "fixed")) for c in fn.cases if not c.hidden]


def same_inputs(a, b):
    """Whether two input dicts hold the same values (tensors: dtype, shape and every element)."""
    if a.keys() != b.keys():
        return False
    for k, x in a.items():
        y = b[k]
        if torch.is_tensor(x) or torch.is_tensor(y):
            if not (torch.is_tensor(x) and torch.is_tensor(y) and x.dtype == y.dtype and x.shape == y.shape
                    and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


REDRAWS = 32  # draws of a case whose inputs keep coming out as shipped ones, before it is marked not fresh


def prepare(fn, case, plan_seed, public_inputs="fresh", shipped=None):
    """One check of `fn` on `case`, its inputs from case_seed(fn, case, plan_seed, public_inputs).

    A drawn case (hidden, or public with public_inputs "fresh") whose inputs equal one the release
    ships for fn (shipped: shipped_inputs(fn), computed when None) is drawn again from the next seed:
    a maker with few choices (local_attention_mask's small case picks one of 7 centres) would
    otherwise hand the student a check it has the answer of. Such a check is fresh (Prepared.fresh);
    one still equal after REDRAWS draws (a maker without randomness) is not.
    """
    seed = case_seed(fn, case, plan_seed, public_inputs)
    inputs = _draw(fn, case, seed)
    fresh = case.seed is None or public_inputs == "fresh"
    if fresh:
        shipped = shipped_inputs(fn) if shipped is None else shipped
        for _ in range(REDRAWS):
            if not any(same_inputs(inputs, s) for s in shipped):
                break
            seed = (seed + 1) & 0x7FFFFFFF
            inputs = _draw(fn, case, seed)
        fresh = not any(same_inputs(inputs, s) for s in shipped)
    inputs64 = {k: (v.to(torch.float64) if _is_float(v) else v) for k, v in inputs.items()}
    on_device = {k: (v.to(case.device) if torch.is_tensor(v) else v) for k, v in inputs64.items()}
    expected = {k: v.detach().to("cpu") for k, v in fn.oracle(on_device).items()}
    return Prepared(fn, case, seed, inputs, inputs64, expected, fresh)


def fresh_pass(checks):
    """Whether the checks that only count beside others ("inputs left unchanged", "vectorised") are
    credited: some check of the function passed on fresh inputs (CheckResult.fresh: drawn when the
    plan was built, never shipped). A table of the release's public inputs and answers passes checks
    on those inputs only, and earns nothing here. Where none of the function's checks had fresh
    inputs (the public checker's plan: fixed inputs, feedback only, no score that counts), any
    passing check is enough.
    """
    if any(c.fresh for c in checks):
        return any(c.passed and c.fresh for c in checks)
    return any(c.passed for c in checks)


# --------------------------------------------------------------------------- results
@dataclass
class CheckResult:
    name: str  # the case label, or "inputs left unchanged"
    hidden: bool
    weight: float
    passed: bool
    message: str = ""
    # The problem with a returned value: True a wrong value, False its type, shape, dtype or device
    # (or the return structure); None when no returned value was judged (passed, raised, not run).
    value_mismatch: Optional[bool] = None
    fresh: bool = False  # run on inputs drawn at grading time (Prepared.fresh); see fresh_pass

    @property
    def short(self):
        return self.name.split(" (")[0]


@dataclass
class FunctionResult:
    fn: GradedFunction
    checks: List[CheckResult] = field(default_factory=list)
    forbidden: List[str] = field(default_factory=list)  # forbidden APIs seen at run time
    static: List[str] = field(default_factory=list)  # lines of its source naming a forbidden API

    @property
    def max_score(self):
        return float(self.fn.points)

    @property
    def score(self):
        if self.forbidden or not self.checks:
            return 0.0
        total = sum(c.weight for c in self.checks)
        got = sum(c.weight for c in self.checks if c.passed)
        return round(self.max_score * got / total, 4)

    def first_failure(self, show_hidden=True):
        if self.forbidden:
            return forbidden_message(self.fn, self.forbidden)
        failed = [c for c in self.checks if not c.passed]
        if failed and failed[0].value_mismatch:  # a wrong type, shape, dtype or device first: fix it first
            failed = [c for c in failed if c.value_mismatch is False and (show_hidden or not c.hidden)] + failed
        for c in failed[:1]:
            if c.hidden and not show_hidden:
                return "[%s] failed (hidden check: details after grades are published)" % c.short
            return "[%s] %s" % (c.short, c.message)
        return ""


def forbidden_message(fn, names):
    return ("%s uses %s, which this assignment does not allow (write it with tensor operations and a "
            "hand-written backward pass): 0 points for this function" % (fn.name, ", ".join(sorted(set(names)))))


@dataclass
class Report:
    functions: List[FunctionResult]
    seconds: float
    plan_seed: int
    device: str
    skipped_cuda: bool
    student_output: str = ""
    notes: List[str] = field(default_factory=list)
    sandbox_uid: Optional[int] = None  # the uid student code ran as (None: not root)
    review: List[str] = field(default_factory=list)  # for instructors only: lines worth a look
    # The isolation layers the workers ran under: layer name -> "active" or "not available: <why>"
    # (sandbox.py). Shown to instructors in results.json and in grade-batch's summary.
    isolation: Dict[str, str] = field(default_factory=dict)

    @property
    def score(self):
        return round(sum(f.score for f in self.functions), 4)

    @property
    def max_score(self):
        return sum(f.max_score for f in self.functions)


# --------------------------------------------------------------------------- grading
class _Session:
    """The worker for one submission, restarted after a crash or a hang."""

    def __init__(self, scratch, limits, use_cuda, deadline, user):
        self.scratch, self.limits, self.use_cuda, self.deadline = scratch, limits, use_cuda, deadline
        self.user = user
        self.layers = {}  # isolation layer -> status, the weakest seen over this session's workers
        self.worker = None
        self.started = False  # a worker has started at least once (student code may have run)
        self.loaded = set()  # modules imported in the current worker
        self.load_errors = {}  # module -> student-facing message (kept across restarts)
        self.output = []

    def ensure(self, module):
        """Import `module` in a live worker. Returns an error message or None."""
        if module in self.load_errors:
            return self.load_errors[module]
        if self.worker is None or not self.worker.alive:
            self.restart()
        if module not in self.loaded:
            try:
                resp = self.worker.request({"op": "load", "module": module}, self.timeout(),
                                           "while importing %s.py" % module)
            except WorkerLost as e:
                self.load_errors[module] = "importing %s.py failed: %s" % (module, e.reason)
                self.lost()
                return self.load_errors[module]
            if not resp.get("ok"):
                self.load_errors[module] = "importing %s.py failed: %s" % (module, format_error(resp.get("error")))
                return self.load_errors[module]
            if resp.get("violations"):
                self.load_errors[module] = "%s.py uses %s when it is imported, which this assignment does " \
                                           "not allow" % (module, ", ".join(sorted(set(resp["violations"]))))
                return self.load_errors[module]
            self.loaded.add(module)
        return None

    def strays(self):
        """Whether the sandbox user runs anything besides the worker (forks, daemons)."""
        if self.user is None or self.worker is None:
            return False
        return any(pid != self.worker.proc.pid for pid in user_processes(self.user.uid))

    def timeout(self):
        """The per-call limit, cut short when the overall budget is nearly spent."""
        return max(0.5, min(self.limits.call_timeout, self.deadline - time.monotonic()))

    def restart(self, tries=2):
        """A fresh worker; a failed start is tried once more before it counts.

        The first start comes before any student code has run: its failure is the grader's
        environment (EnvironmentFailure), never the student's. Later failures may be the student's
        doing (a fork bomb, files left behind) and cost their checks.
        """
        for attempt in range(tries):
            self.lost()
            try:
                self.worker = Worker(self.scratch, self.limits, self.use_cuda, self.user).start()
                self.layers = isolation.combine(self.layers, self.worker.layers)
                self.started = True
                return
            except WorkerLost as e:
                self.lost()
                if attempt == tries - 1:
                    raise e if self.started else EnvironmentFailure(e.reason, e.output)

    def lost(self):
        if self.worker is not None:
            self.worker.stop()
            self.output.append(self.worker.output.text())
        self.worker = None
        self.loaded = set()

    def close(self):
        self.lost()


def grade(submission, plan, limits=None, budget=None):
    """Grade the submission folder against a plan. Never raises for anything the student did."""
    limits = limits or Limits.from_env()
    budget = budget if budget is not None else float(os.environ.get("AUTOGRADER_BUDGET", DEFAULT_BUDGET))
    start = time.monotonic()
    deadline = start + budget
    functions = list(dict.fromkeys(p.fn.name for p in plan.checks))
    fns = [registry.BY_NAME[n] for n in functions]
    statuses = locate(submission, list(dict.fromkeys(fn.file for fn in fns)))
    user = lease()
    scratch = make_scratch(statuses, owner=user)
    session = _Session(scratch, limits, plan.device == "cuda", deadline, user)
    results = {fn.name: FunctionResult(fn) for fn in fns}
    notes, review = static.attach(statuses, results)
    notes += list(shadowing(statuses).values())  # files make_scratch refused: the student is told
    touched = {fn.name: {"modified": set()} for fn in fns}
    gave_up = {}  # function -> reason its remaining checks are skipped
    fatal = None  # set when no worker can be started: nothing more can run

    def fail(prep, message):
        return CheckResult(prep.case.label, prep.case.hidden, prep.case.weight, False, message, fresh=prep.fresh)

    try:
        for prep in plan.checks:
            fn = prep.fn
            res = results[fn.name]
            error = statuses[fn.file].error or gave_up.get(fn.name) or fatal
            if error is None and time.monotonic() > deadline:
                error = "not run: the overall time budget of %g s ran out" % budget
            if error:
                res.checks.append(fail(prep, error))
                continue
            try:
                res.checks.append(run_check(session, prep, touched[fn.name], res, gave_up))
            except WorkerLost as e:
                fatal = "not run: the worker could not start (%s)" % e.reason
                notes.append("the worker could not start: %s" % e.reason)
                res.checks.append(fail(prep, fatal))
        timed = speed.run(session, plan, results, deadline)  # the vectorisation checks (speed.py)
    finally:
        session.close()
        notes += release(user, session.layers)
        shutil.rmtree(scratch, ignore_errors=True)
    for fn in fns:
        t = touched[fn.name]
        if t["modified"]:
            msg = compare.in_place_message(sorted(t["modified"]))
        elif not fresh_pass(results[fn.name].checks):  # never on the release's inputs alone
            msg = NOT_CREDITED
        else:
            msg = ""
        results[fn.name].checks.append(CheckResult("inputs left unchanged", False, 1.0, not msg, msg))
        results[fn.name].checks += timed.get(fn.name, [])  # last: speed matters after correctness
    output = "\n".join(s for s in session.output if s.strip())
    return Report([results[fn.name] for fn in fns], time.monotonic() - start, plan.seed, plan.device,
                  plan.skipped_cuda, output, notes, user.uid if user is not None else None, review,
                  session.layers)


def _arg(a, fn):
    if isinstance(a, DictArg):
        return {"dict": a.prefix}
    if a == CACHE:
        return {"step": 0, "index": registry.BY_NAME[fn.forward].returns.index(CACHE)}
    return {"in": a}


def build_steps(prep):
    """The worker program for one check: the call, preceded by the forward for a backward."""
    fn = prep.fn
    steps = []
    if fn.forward:
        fwd = registry.BY_NAME[fn.forward]
        steps.append({"module": fwd.file, "fn": fwd.name, "args": [_arg(a, fwd) for a in fwd.args],
                      "arity": len(fwd.returns), "skip": [fwd.returns.index(CACHE)], "deny": fwd.forbidden_ops})
    args = [_arg(a, fn) for a in fn.args]
    skip = [i for i, r in enumerate(fn.returns) if r == CACHE]
    steps.append({"module": fn.file, "fn": fn.name, "args": args, "arity": None, "skip": skip,
                  "deny": fn.forbidden_ops})
    return steps


def run_check(session, prep, touched, res, gave_up):
    fn, case = prep.fn, prep.case

    def result(passed, message=""):
        return CheckResult(case.label, case.hidden, case.weight, passed, message, fresh=prep.fresh)

    files = [registry.BY_NAME[fn.forward].file] if fn.forward else []
    for module in files + [fn.file]:
        err = session.ensure(module)
        if err:
            return result(False, err)
    steps = build_steps(prep)
    sent = {k: (v.to(case.device) if torch.is_tensor(v) and case.device != "cpu" else v)
            for k, v in prep.inputs.items()}
    try:
        resp = session.worker.request({"op": "call", "inputs": sent, "steps": steps},
                                      session.timeout(), "in %s" % fn.name)
    except WorkerLost as e:
        session.lost()
        gave_up[fn.name] = "skipped: an earlier check of %s already lost the worker: %s" % (fn.name, e.reason)
        return result(False, e.reason)
    if session.strays():  # processes the call left behind go before the next check runs
        session.lost()
    return evaluate(prep, resp, touched, res)


def evaluate(prep, resp, touched, res):
    fn, case = prep.fn, prep.case

    def result(passed, message="", value_mismatch=None):
        return CheckResult(case.label, case.hidden, case.weight, passed, message, value_mismatch, prep.fresh)

    if not isinstance(resp, dict) or "steps" not in resp:
        return result(False, "the worker's answer was malformed")
    steps = resp["steps"]
    own = steps[1] if fn.forward and len(steps) > 1 else (steps[0] if steps and not fn.forward else None)
    if isinstance(own, dict):  # the forward a backward check calls is graded on its own
        res.forbidden.extend(str(v) for v in own.get("violations", []) if isinstance(v, str))
    # Inputs modified in place (the grader's own copies are untouched, so compare with those).
    after = resp.get("inputs_after") or {}
    for name, original in prep.inputs.items():
        got = after.get(name)
        if not torch.is_tensor(original):
            continue
        if isinstance(got, Received) and (got.dtype != original.dtype or got.shape != tuple(original.shape)
                                          or not torch.equal(got.data, original)):
            touched["modified"].add(name)
    fwd_note = ""
    if fn.forward:
        fwd = registry.BY_NAME[fn.forward]
        if not steps or not steps[0].get("ok"):
            err = steps[0].get("error") if steps else None
            return result(False, "could not get a cache: your %s raised %s" % (fwd.name, format_error(err)))
        if steps[0].get("bad_structure"):
            return result(False, "could not get a cache: your %s returned %s, expected a tuple (%s)" % (
                fwd.name, compare.describe_type(steps[0].get("value")), ", ".join(fwd.returns)))
        fwd_values, _ = unpack(fwd, steps[0].get("value"))
        for name in fwd.outputs:
            problem = _check_output(fwd, name, fwd_values[name], prep)
            if problem:
                fwd_note = ("\nNote: this check built the cache with your %s, whose output is wrong (%s); "
                            "fix %s first." % (fwd.name, problem[0].split("\n")[0], fwd.name))
                break
    last = steps[-1] if steps else {}
    if len(steps) < (2 if fn.forward else 1) or not last.get("ok"):
        return result(False, "%s raised %s" % (fn.name, format_error(last.get("error"))) + fwd_note)
    values, problem = unpack(fn, last.get("value"))
    if problem:
        return result(False, problem + fwd_note, False)
    for name in fn.outputs:
        problem = _check_output(fn, name, values[name], prep, res)
        if problem:
            return result(False, problem[0] + fwd_note, problem[1])
    return result(True)


def _check_output(fn, name, got, prep, res=None):
    """(student-facing problem, value_mismatch) of one returned value (a tensor or a dict of them), or None.

    res: when given, returned tensors that require grad are recorded as autograd use.
    """
    case = prep.case
    if name in prep.expected:
        parts = [(name, name, got)]
    else:  # a dict output: the oracle gave "<name>.<key>" entries
        keys = sorted(k[len(name) + 1:] for k in prep.expected if k.startswith(name + "."))
        if not isinstance(got, dict):
            return "%s should be a dict with keys %s, got %s" % (name, keys, compare.describe_type(got)), False
        if sorted(got) != keys:
            return "%s has keys %s, expected %s" % (name, sorted(got), keys), False
        parts = [("%s[%r]" % (name, k), "%s.%s" % (name, k), got[k]) for k in keys]
    rtol = fn.tolerance(case)
    for label, key, value in parts:
        if res is not None and isinstance(value, Received) and value.requires_grad:
            res.forbidden.append("autograd (%s was returned with requires_grad=True)" % label)
        problem = compare.check_tensor(label, value, prep.expected[key], case.dtype, case.device, rtol)
        if problem:
            message, value_mismatch = problem
            return message + (hints(prep, key, value) if value_mismatch else ""), value_mismatch
    return None
