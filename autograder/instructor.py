"""Instructor tests: unittest files written with gradescope-utils' decorators, run in the sandbox.

Anything the registry cannot express (a trained model's loss, a sampled sequence) goes into a
`test*.py` unittest file in `instructor_tests/`. Each file is sent as source text to a worker of
the same sandbox as the registry's checks (the sandbox uid when root, the same limits, a scratch
copy of the submission first on sys.path, so `import tbptt` imports the student's file), runs
there under one time limit for the whole file, and each test becomes one results.json entry the
way gradescope-utils' JSONTestRunner writes it: the docstring's first line (else the test id) as
the name, @weight or @partial_credit as max_score, @visibility, @number, @tags, @hide_errors,
the failure message and what the test printed as output; a @leaderboard test fills the
leaderboard instead. The grading process never imports a test file.

Where the kit parts from JSONTestRunner, on purpose:
- A failing subTest fails its test, and its message is in the output (JSONTestRunner drops it).
- A test that failed or raised never gets full marks: a @weight test gets 0; a @partial_credit
  test keeps the score it set with set_score only when that is below its weight (else 0). A
  score set is clamped to [0, weight]; a test whose score is below its weight reads "failed".
- A test that never reported gets 0 with the reason: the file timed out, exited or killed its
  worker while that test or an earlier one ran, or a setUpClass/setUpModule failed. Grading
  goes on: the files share one worker, replaced when one loses it. A file whose module cannot even be
  loaded gets one 0 entry per test its text shows (test* methods of *TestCase classes, with
  their decorators' literal arguments).
- Skipped tests give no entry (as JSONTestRunner); an error in a fixture outside every test
  (tearDownClass, say) gives a 0-point hidden entry.

Limitation, stated plainly: the test runs in the student's process, so a submission that attacks
the worker itself could read a hidden test's text or forge its outcome; the registry's checks,
scored by the grader alone, are not exposed to that.
"""
import ast
import os
import shutil
import time
import unittest
from dataclasses import dataclass, field
from typing import List

from . import registry, results
from .config import VISIBILITY
from .runner import DEFAULT_BUDGET, KIT_ROOT, _Session
from .sandbox import Limits, WorkerLost, hide_from_sandbox, remove_user_files, sandbox_user
from .submission import locate, make_scratch

FOLDER = os.path.join(KIT_ROOT, "instructor_tests")
DEFAULT_TIMEOUT = 60.0  # seconds for one test file, all its tests together (course.toml: instructor_timeout)
DECORATORS = ("weight", "partial_credit", "visibility", "number", "tags", "hide_errors", "leaderboard")


@dataclass
class InstructorReport:
    """The results.json entries of every instructor test, and what went on around them."""

    tests: List[dict] = field(default_factory=list)
    leaderboard: List[dict] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # student-facing
    output: str = ""  # what the workers printed outside the tests' own buffers
    seconds: float = 0.0
    files: List[str] = field(default_factory=list)

    @property
    def score(self):
        return round(sum(t.get("score", 0.0) for t in self.tests), 4)

    @property
    def max_score(self):
        return sum(t.get("max_score", 0.0) for t in self.tests)


def find_files(folder=None):
    """The test files of `folder` (default instructor_tests/): test*.py, sorted, top level only."""
    folder = FOLDER if folder is None else folder
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
            if n.startswith("test") and n.endswith(".py") and os.path.isfile(os.path.join(folder, n))]


def run(submission, folder=None, limits=None, budget=None, spent=0.0, timeout=None, use_cuda=False):
    """Run every instructor test file against the submission folder, each in a sandboxed worker.

    budget: seconds for the whole grading (None: AUTOGRADER_BUDGET, else runner's default), of
    which `spent` are already gone (the registry's grading). timeout: seconds for one file
    (course.toml's instructor_timeout; AUTOGRADER_INSTRUCTOR_TIMEOUT overrides it; default 60),
    cut to what is left of the budget. Never raises for anything the student's code or a test
    did; a test file that is not UTF-8 Python raises, and so does a worker that cannot start
    before any test ran (sandbox.EnvironmentFailure, as in runner.grade).
    """
    start = time.monotonic()
    files = find_files(folder)
    rep = InstructorReport(files=[os.path.basename(p) for p in files])
    if not files:
        return rep
    sources = [(path, _read(path)) for path in files]  # an instructor's broken file fails loudly, first
    limits = limits or Limits.from_env()
    if budget is None:
        budget = float(os.environ.get("AUTOGRADER_BUDGET", DEFAULT_BUDGET))
    env = os.environ.get("AUTOGRADER_INSTRUCTOR_TIMEOUT")
    timeout = float(env) if env else (float(timeout) if timeout is not None else DEFAULT_TIMEOUT)
    deadline = start + budget - spent
    user = sandbox_user()
    if user is not None:
        hide_from_sandbox(KIT_ROOT)
    scratch = make_scratch(locate(submission, registry.FILES), owner=user)
    session = _Session(scratch, limits, use_cuda, deadline, user)
    fatal = None  # set when no worker can be started
    try:
        for path, source in sources:
            left = deadline - time.monotonic()
            if fatal or left < 1.0:
                reason = fatal or "not run: the overall time budget ran out"
                rep.tests += [make_entry(m, path, None, reason) for m in static_tests(source, _module(path))]
                continue
            try:
                run_file(session, path, source, min(timeout, left), rep)
            except WorkerLost as e:
                fatal = "not run: the worker could not start (%s)" % e.reason
                rep.notes.append("the worker for the instructor tests could not start: %s" % e.reason)
                rep.tests += [make_entry(m, path, None, fatal) for m in static_tests(source, _module(path))]
    finally:
        session.close()
        if user is not None:
            remove_user_files(user.uid)
            if session.network_exposed:
                rep.notes.append("network isolation was not available here: student code could reach the network")
            user.release()
        shutil.rmtree(scratch, ignore_errors=True)
    rep.output = "\n".join(s for s in session.output if s.strip())
    rep.seconds = time.monotonic() - start
    return rep


def _read(path):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    ast.parse(source, filename=path)
    return source


def _module(path):
    return os.path.splitext(os.path.basename(path))[0]


def run_file(session, path, source, timeout, rep):
    """Run one test file in the session's worker; add its entries to rep.

    Raises WorkerLost only when no worker can be started; a worker lost while the tests run
    costs the tests that had not reported yet.
    """
    if session.worker is None or not session.worker.alive:
        session.restart()
    name, label = _module(path), os.path.basename(path)
    what = "in the instructor tests of %s" % label
    listed, done, running = None, {}, None  # listed: test metadata; done: id -> outcome
    fixture_errors, load_error, lost = [], None, None
    file_deadline = time.monotonic() + timeout
    try:
        worker = session.worker
        chunks = [source[i:i + 1000] for i in range(0, len(source), 1000)]  # the wire caps one string
        msg = worker.request({"op": "unittest", "module": name, "filename": "instructor_tests/" + label,
                              "source": chunks}, timeout, what)
        rid = worker.next_id
        while True:
            event = msg.get("event") if isinstance(msg, dict) else None
            test = msg.get("test") if isinstance(msg, dict) and isinstance(msg.get("test"), str) else None
            if event == "tests" and isinstance(msg.get("tests"), list) and listed is None:
                listed = [m for m in msg["tests"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
                ids = {m["id"] for m in listed}
            elif event == "start" and listed is not None and test in ids:
                running = test
            elif event == "result" and test is not None and test == running:
                done[running], running = msg, None
            elif event == "fixture":
                if len(fixture_errors) < 20:
                    fixture_errors.append("%s raised %s" % (msg.get("where"), msg.get("error")))
            elif event == "error":
                load_error = "the test file could not be loaded: %s" % _error_text(msg.get("error"))
                break
            elif event == "aborted":
                lost = "the test run broke off: %s" % _error_text(msg.get("error"))
                if test in done:  # reported as stopped unfinished: say why
                    done.pop(test)
                    running = test
                break
            elif event == "done":
                break
            else:
                raise WorkerLost("the worker sent malformed data %s" % what)
            msg = worker._receive(rid, file_deadline, what, timeout)  # the next frame of this request
    except WorkerLost as e:
        lost = e.reason.replace("(the per-call time limit)", "(the limit for one instructor test file: "
                                                             "AUTOGRADER_INSTRUCTOR_TIMEOUT)")
        session.lost()
    if session.strays():  # processes a test left behind go before the next file runs
        session.lost()
    if listed is None:  # the module never loaded: its tests as far as its text shows them
        listed = static_tests(source, name)
        if not listed:
            rep.notes.append("the instructor tests of %s did not run: %s" % (label, load_error or lost))
    for meta in listed:
        outcome = done.get(meta["id"])
        reason = None
        if outcome is None:
            if load_error:
                reason = load_error
            elif lost and meta["id"] == running:
                reason = lost
            elif lost:
                reason = "not run: an earlier test of %s stopped the worker: %s" % (label, lost)
            elif fixture_errors:
                reason = "not run: " + "; ".join(fixture_errors)
            else:
                reason = "not run: the test run of %s stopped before this test" % label
        if meta.get("leaderboard"):
            value = outcome.get("leaderboard_value") if outcome else None
            value = value if isinstance(value, str) else _float(value)
            if value is not None:
                rep.leaderboard.append({"name": str(meta["leaderboard"]), "value": value,
                                        "order": "asc" if meta.get("leaderboard_order") == "asc" else "desc"})
            continue
        entry = make_entry(meta, path, outcome, reason)
        if entry is not None:
            rep.tests.append(entry)
    if fixture_errors and all(m["id"] in done for m in listed):  # e.g. tearDownClass, after every test
        rep.tests.append({"name": "%s: errors outside the tests" % label, "score": 0.0, "max_score": 0.0,
                          "status": "failed", "visibility": "hidden", "extra_data": {"instructor_test": label},
                          "output": results._clip("\n".join(fixture_errors))})


def _error_text(err):
    if not isinstance(err, dict):
        return "unknown error"
    text = "%s: %s" % (err.get("type", "Error"), err.get("message", ""))
    return text + ("\n" + err["trace"] if err.get("trace") else "")


def _float(x):
    """A finite float, or None (values from the worker are untrusted)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or x in (float("inf"), float("-inf")):
        return None
    return float(x)


def make_entry(meta, path, outcome, reason=None):
    """One results.json entry, as gradescope-utils' JSONTestResult.buildResult makes it.

    outcome: the worker's "result" frame, or None when the test never reported (then `reason`
    says why). Returns None for a skipped test (no entry, as JSONTestRunner).
    """
    outcome = outcome if isinstance(outcome, dict) else None
    status = outcome.get("status") if outcome else "lost"
    if status == "skipped":
        return None
    messages = outcome.get("messages") if outcome else [reason]
    messages = [m for m in messages if isinstance(m, str)] if isinstance(messages, list) else []
    passed = (status in ("passed", "expected_failure") and not messages
              and not (outcome.get("subtests_failed") if outcome else 0))
    output = outcome.get("output") if outcome and isinstance(outcome.get("output"), str) else ""
    if not passed:
        if outcome and meta.get("hide_errors"):
            text = str(meta["hide_errors"])
        else:
            text = "\n".join("Test Failed: " + m for m in (messages or ["the test did not pass (%s)" % status]))
        output += ("\n" if output.endswith("\n") else "\n\n") + text if output else text
    entry = {"name": str(meta.get("name") or meta["id"])}
    weight = _float(meta.get("weight"))
    score_set = _float(outcome.get("score")) if outcome else None
    failed = not passed
    if weight is not None or score_set is not None:
        weight = max(weight or 0.0, 0.0)
        if score_set is not None:
            score = min(max(score_set, 0.0), weight)
        else:
            score = weight if passed else 0.0
        if not passed and score >= weight:
            score = 0.0  # a failed test never gets full marks
        entry["score"] = round(score, 4)
        entry["max_score"] = weight
        failed |= score < weight
    entry["status"] = "failed" if failed else "passed"
    if isinstance(meta.get("tags"), list) and meta["tags"]:
        entry["tags"] = [str(t) for t in meta["tags"]]
    if output:
        entry["output"] = results._clip(output)
    visibility = meta.get("visibility") or "visible"
    entry["visibility"] = visibility if visibility in VISIBILITY else "hidden"  # a typo never shows a test
    if meta.get("number"):
        entry["number"] = str(meta["number"])
    entry["extra_data"] = {"instructor_test": os.path.basename(path), "id": str(meta["id"])}
    return entry


# --------------------------------------------------------------------------- the file's text
def _dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    return ""


def static_tests(source, module):
    """The tests of a test file as its text shows them, for a file whose module never loaded.

    Methods named test* of top-level classes deriving from a *TestCase, in unittest's order
    (classes, then methods, sorted by name), with the literal arguments of gradescope-utils'
    decorators. Names and ids are made as unittest makes them.
    """
    tree = ast.parse(source)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)
               and any(_dotted(b).endswith("TestCase") for b in n.bases)]
    out = []
    for cls in sorted(classes, key=lambda c: c.name):
        methods = {n.name: n for n in cls.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")}
        for method in sorted(methods):
            fn = methods[method]
            stand_in = type(cls.name, (unittest.TestCase,), {method: lambda self: None, "__module__": module,
                                                              "__qualname__": cls.name})(method)
            doc = ast.get_docstring(fn)
            meta = {"id": stand_in.id(), "name": doc.strip().split("\n")[0].strip() if doc else str(stand_in),
                    "weight": None, "visibility": None, "number": None, "tags": None, "hide_errors": None,
                    "leaderboard": None}
            for dec in fn.decorator_list:
                kind = _dotted(dec.func).rsplit(".", 1)[-1] if isinstance(dec, ast.Call) else ""
                if kind not in DECORATORS:
                    continue
                try:
                    args = [ast.literal_eval(a) for a in dec.args]
                except ValueError:
                    continue
                if kind == "tags":
                    meta["tags"] = [str(a) for a in args]
                elif kind == "hide_errors":
                    meta["hide_errors"] = str(args[0]) if args else "Test failed"
                elif args:
                    meta["weight" if kind == "partial_credit" else kind] = args[0]
            if meta["number"] is not None:
                meta["number"] = str(meta["number"])
            out.append(meta)
    return out


# --------------------------------------------------------------------------- reporting
def merge(data, rep):
    """Add an InstructorReport to a results.json dictionary (results.gradescope's); returns it."""
    if not rep.files:
        return data
    data["tests"].extend(rep.tests)
    if rep.leaderboard:
        data.setdefault("leaderboard", []).extend(rep.leaderboard)
    data["score"] = round(data.get("score", 0.0) + rep.score, 4)
    data["execution_time"] = round(data.get("execution_time", 0.0) + rep.seconds, 2)
    lines = ["Instructor tests: %s / %s." % (results._fmt_points(rep.score), results._fmt_points(rep.max_score))]
    lines += [n for n in rep.notes if n not in data.get("output", "")]
    if rep.output:
        lines.append("\nWhat ran during the instructor tests printed (first part):\n"
                     + results._clip(rep.output, 2000))
    data["output"] = (data.get("output", "") + "\n" + "\n".join(lines)).lstrip("\n")
    return data


def table(rep, width=140):
    """The terminal lines of the instructor tests: name, score/max, first line of the failure."""
    if not rep.files:
        return ""
    rows = ["instructor tests (%s)" % ", ".join(rep.files)]
    for t in rep.tests:
        points = "%4s/%-4s" % (results._fmt_points(t["score"]), results._fmt_points(t["max_score"])) \
            if "max_score" in t else "%9s" % ""
        lines = (t.get("output") or "failed").strip().split("\n")
        first = "passed" if t["status"] == "passed" else next(
            (ln for ln in lines if ln.startswith("Test Failed: ")), lines[-1])
        line = "  %s  %s  %s" % (points, t["name"], first)
        rows.append(line if len(line) <= width else line[:width - 3] + "...")
    rows.append("  %4s/%-4s  instructor tests total (%.1f s)" % (
        results._fmt_points(rep.score), results._fmt_points(rep.max_score), rep.seconds))
    rows += ["note: " + n for n in rep.notes]
    return "\n".join(rows)
