"""The grading loop: a plan in (plans.build_plan), one submission graded, a Report out (outcome.py).

`grade` runs the submission's functions in a sandboxed worker (sandbox.Worker, through a Session
that restarts it after a crash or a hang), one check at a time (steps.build_steps: the worker
program), judges each answer against torch's (evaluate), then runs the vectorisation checks
(speed.py). Never raises for anything the student did.
"""
import os
import shutil
import time

import torch

from . import compare, isolation, speed, static
from .feedback import format_error, hints, unpack
from .results import NOT_CREDITED
from .outcome import CheckResult, FunctionResult, Report, fresh_pass
from .sandbox import EnvironmentFailure, Limits, Worker, WorkerLost, lease, release, user_processes
from .steps import build_steps, call_request
from .submission import locate, make_scratch, relocate, shadowing
from .wire import Received

DEFAULT_BUDGET = 480.0  # seconds for one submission: inside Gradescope's default 10 minutes


# --------------------------------------------------------------------------- grading
class Session:
    """The worker for one submission, restarted after a crash or a hang (runner.grade, and the instructor
    tests after it). kit: the folder whose secret folders its workers never see (Plan.kit)."""

    def __init__(self, scratch, limits, use_cuda, deadline, user, kit=None, where=None):
        self.scratch, self.limits, self.use_cuda, self.deadline = scratch, limits, use_cuda, deadline
        self.where = where or {}  # function name -> the student's module that holds it (submission.relocate)
        self.user, self.kit = user, kit
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
                self.worker = Worker(self.scratch, self.limits, self.use_cuda, self.user, self.kit).start()
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
    checked = {p.fn.name for p in plan.checks}
    fns = [fn for fn in plan.functions if fn.name in checked]
    statuses = locate(submission, list(dict.fromkeys(fn.file for fn in fns)))
    # A function whose file is missing may be in another (an rnn_layers.py holding the LSTM's functions);
    # a backward's forward is looked for too, since its check calls it.
    callers = [p.forward for p in plan.checks if p.forward] + fns
    where, found = relocate(submission, statuses, list({fn.name: fn for fn in callers}.values()))
    user = lease(plan.kit)
    scratch = make_scratch(statuses, owner=user, graded=[fn.file for fn in plan.functions])
    session = Session(scratch, limits, plan.device == "cuda", deadline, user, plan.kit, where)
    results = {fn.name: FunctionResult(fn, track=plan.track) for fn in fns}
    for name, note in found.items():
        if name in results:
            results[name].notes.append(note)
    notes, review = static.attach(statuses, results, where)
    if plan.track == "numpy":
        notes += static.torch_in_numpy_track(statuses)
    notes += list(shadowing(statuses, [fn.file for fn in plan.functions]).values())  # files make_scratch refused: the student is told
    touched = {fn.name: {"modified": set()} for fn in fns}
    gave_up = {}  # function -> reason its remaining checks are skipped
    fatal = None  # set when no worker can be started: nothing more can run

    def fail(prep, message):
        return CheckResult(prep.case.label, prep.case.hidden, prep.case.weight, False, message, fresh=prep.fresh)

    try:
        for prep in plan.checks:
            fn = prep.fn
            res = results[fn.name]
            error = statuses[where[fn.name]].error or gave_up.get(fn.name) or fatal
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
    _note_failing_callees(statuses, results, where)
    for fn in fns:
        t = touched[fn.name]
        if t["modified"]:
            msg = compare.in_place_message(sorted(t["modified"]), plan.track)
        elif not fresh_pass(results[fn.name].checks):  # never on the release's inputs alone
            msg = NOT_CREDITED
        else:
            msg = ""
        results[fn.name].checks.append(CheckResult("inputs left unchanged", False, 1.0, not msg, msg))
        results[fn.name].checks += timed.get(fn.name, [])  # last: speed matters after correctness
    output = "\n".join(s for s in session.output if s.strip())
    return Report([results[fn.name] for fn in fns], time.monotonic() - start, plan.seed, plan.device,
                  plan.skipped_cuda, output, notes, user.uid if user is not None else None, review,
                  session.layers, plan.track)

def run_check(session, prep, touched, res, gave_up):
    fn, case = prep.fn, prep.case

    def result(passed, message=""):
        return CheckResult(case.label, case.hidden, case.weight, passed, message, fresh=prep.fresh)

    files = [session.where.get(prep.forward.name, prep.forward.file)] if fn.forward else []
    for module in files + [session.where.get(fn.name, fn.file)]:
        err = session.ensure(module)
        if err:
            return result(False, err)
    steps = build_steps(prep, session.where)
    sent = {k: (v.to(case.device) if torch.is_tensor(v) and case.device != "cpu" else v)
            for k, v in prep.inputs.items()}
    try:
        resp = session.worker.request(call_request(sent, steps, track=prep.track), session.timeout(), "in %s" % fn.name)
    except WorkerLost as e:
        session.lost()
        gave_up[fn.name] = "skipped: an earlier check of %s already lost the worker: %s" % (fn.name, e.reason)
        return result(False, e.reason)
    if session.strays():  # processes the call left behind go before the next check runs
        session.lost()
    try:
        return evaluate(prep, resp, touched, res)
    except Exception as e:  # noqa: BLE001  the answer is the worker's, which student code can write itself:
        # a shape of it no check above foresaw costs this check, never the whole submission
        return result(False, "the grader could not read what %s returned (%s: %s)"
                      % (fn.name, type(e).__name__, str(e)[:200]))


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
        fwd = prep.forward
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
    problems = [(name, p) for name, p in ((n, _check_output(fn, n, values[n], prep, res)) for n in fn.outputs) if p]
    if not problems:
        return result(True)
    (_, (message, value_mismatch)), others = problems[0], problems[1:]
    if others:  # every wrong output is named: one wrong gradient and all of them wrong are different bugs
        message += "".join("\nAlso wrong: %s: %s" % (n, _gist(n, p[0])) for n, p in others)
        if len(problems) == len(fn.outputs) > 2:
            message += ("\nEvery output is wrong: look first at what they all share (in a backward pass, the "
                        "gradient flowing into the pre-activation).")
    return result(False, message + fwd_note, value_mismatch)


def _note_failing_callees(statuses, results, where=None):
    """A function that failed and calls another graded function of its file that failed too (rnn_forward
    on rnn_step_forward) is told so: fixing the one it builds on comes first. where: relocate's."""
    failed = {name for name, fr in results.items() if any(not c.passed for c in fr.checks)}
    where = where or {}
    tables = {}  # file -> {function: the functions it calls}, each file read and parsed once
    for fr in results.values():
        st = statuses.get(where.get(fr.fn.name, fr.fn.file))
        if fr.fn.name not in failed or st is None or st.error or not st.path:
            continue
        if st.path not in tables:
            try:
                with open(st.path, encoding="utf-8-sig") as f:  # vetted: UTF-8 text under the size limit
                    tables[st.path] = static.calls(f.read())
            except (OSError, UnicodeDecodeError):
                tables[st.path] = {}
        called = tables[st.path].get(fr.fn.name, set())
        for name in sorted(called & failed - {fr.fn.name}):
            if where.get(name, results[name].fn.file) == where.get(fr.fn.name, fr.fn.file):
                fr.notes.append("%s calls your %s, which fails its own checks: fix %s first."
                                % (fr.fn.name, name, name))


def _gist(name, message):
    """The first line of an output's problem without its name and hints: "largest relative error 3.1e-01 ...",
    whole (a number cut in the middle tells a student nothing)."""
    line = message.split("\n")[0]
    line = line[len(name):].lstrip(" :") if line.startswith(name) else line
    return line[len("is wrong: "):] if line.startswith("is wrong: ") else line


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
        if prep.track == "numpy":  # a loss returned as a Python float is fine there
            value = compare.as_number(value, prep.expected[key])
        if res is not None and isinstance(value, Received) and value.requires_grad:
            res.forbidden.append("autograd (%s was returned with requires_grad=True)" % label)
        problem = compare.check_tensor(label, value, prep.expected[key], case.dtype, case.device, rtol, prep.track)
        if problem:
            message, value_mismatch = problem
            return message + (hints(prep, key, value) if value_mismatch else ""), value_mismatch
    return None
