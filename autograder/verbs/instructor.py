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

The points come from the grader's reading of the file, never from the worker. `static_tests`
reads every test and its decorators from the file's text (AST only) before any worker starts:
a decorator argument must be a literal or a constant assigned a literal (`POINTS = 5`, then
`@weight(POINTS)`), else the file fails loudly for the instructor (InstructorFileError, naming
file:line), as a file that does not parse does. The worker's reports are matched to those tests
by test id and give only outcomes: a test it reports that the text does not show earns nothing
(a hidden 0-point note lists it), and the instructor tests' maximum is always the text's total.

Where the kit parts from JSONTestRunner, on purpose:
- A failing subTest fails its test, and its message is in the output (JSONTestRunner drops it).
- A test that failed or raised never gets full marks: a @weight test gets 0; a @partial_credit
  test keeps the score it set with set_score only when that is below its weight (else 0). A
  score set is clamped to [0, weight]; a test whose score is below its weight reads "failed".
- A test that never reported gets 0 with the reason: the file timed out, exited or killed its
  worker while that test or an earlier one ran, or a setUpClass/setUpModule failed. Grading
  goes on: the files share one worker, replaced when one loses it. A file whose module cannot even be
  loaded gets one 0 entry per test its text shows.
- Tests under @unittest.skip (on the method or its class) give no entry, as JSONTestRunner; a
  test skipped while it runs (skipIf, skipTest) gets 0 of its weight, so that nothing run in the
  worker can take points out of the maximum. An error in a fixture outside every test
  (tearDownClass, say) gives a 0-point hidden entry.

Limitation, stated plainly: the test runs in the student's process, so a submission that attacks
the worker itself could read a hidden test's text or forge its outcome (pass or fail, a partial
score up to the weight); never a weight, a visibility or a test the file does not have. The
registry's checks, scored by the grader alone, are not exposed to that.
"""
import ast
import collections
import math
import os
import shutil
import time
import unittest
from dataclasses import dataclass, field
from typing import List

from .. import paths, registry
from ..config import VISIBILITY
from ..engine import results
from ..engine.runner import DEFAULT_BUDGET, Session
from ..engine.sandbox import Limits, WorkerLost, lease, release
from ..engine.submission import locate, make_scratch, shadowing

FOLDER = paths.INSTRUCTOR_TESTS
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
    layers: dict = field(default_factory=dict)  # isolation layers of its workers (sandbox.py)

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


def run(submission, folder=None, limits=None, budget=None, spent=0.0, timeout=None, use_cuda=False, track="torch"):
    """Run every instructor test file against the submission folder, each in a sandboxed worker.

    budget: seconds for the whole grading (None: AUTOGRADER_BUDGET, else runner's default), of
    which `spent` are already gone (the registry's grading). timeout: seconds for one file
    (course.toml's instructor_timeout; AUTOGRADER_INSTRUCTOR_TIMEOUT overrides it; default 60),
    cut to what is left of the budget. Never raises for anything the student's code or a test
    did; a test file that is not UTF-8 Python raises, and so does a worker that cannot start
    before any test ran (sandbox.EnvironmentFailure, as in runner.grade). track: the course's (paths.TRACKS),
    which every test module finds in its global TRACK before it runs (a NumPy submission's functions take and
    return NumPy arrays: the test converts what it passes them).
    """
    start = time.monotonic()
    files = find_files(folder)
    rep = InstructorReport(files=[os.path.basename(p) for p in files])
    if not files:
        return rep
    # An instructor's broken file, or one whose points its text does not show, fails loudly, first.
    sources = [(path, source, static_tests(source, _module(path), path))
               for path, source in ((p, _read(p)) for p in files)]
    limits = limits or Limits.from_env()
    if budget is None:
        budget = float(os.environ.get("AUTOGRADER_BUDGET", DEFAULT_BUDGET))
    env = os.environ.get("AUTOGRADER_INSTRUCTOR_TIMEOUT")
    timeout = float(env) if env else (float(timeout) if timeout is not None else DEFAULT_TIMEOUT)
    deadline = start + budget - spent
    user = lease(paths.KIT_ROOT)
    statuses = locate(submission, registry.FILES)
    rep.notes += list(shadowing(statuses, registry.FILES).values())  # the files make_scratch refuses
    scratch = make_scratch(statuses, owner=user, graded=registry.FILES)
    session = Session(scratch, limits, use_cuda, deadline, user, paths.KIT_ROOT)
    session.track = track
    fatal = None  # set when no worker can be started
    try:
        for path, source, tests in sources:
            left = deadline - time.monotonic()
            if fatal or left < 1.0:
                reason = fatal or "not run: the overall time budget ran out"
                rep.tests += _entries(tests, path, {}, lambda m: reason, rep)
                continue
            try:
                run_file(session, path, source, min(timeout, left), rep, tests)
            except WorkerLost as e:
                fatal = "not run: the worker could not start (%s)" % e.reason
                rep.notes.append("the worker for the instructor tests could not start: %s" % e.reason)
                rep.tests += _entries(tests, path, {}, lambda m: fatal, rep)
    finally:
        session.close()
        rep.notes += [n for n in release(user, session.layers) if n not in rep.notes]
        rep.layers = session.layers
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


def run_file(session, path, source, timeout, rep, tests=None):
    """Run one test file in the session's worker; add its entries to rep.

    tests: the file's static_tests (read here when None), the only tests that get entries, with
    the only weights, visibilities and numbers that count: the worker reports outcomes alone.
    Raises WorkerLost only when no worker can be started; a worker lost while the tests run
    costs the tests that had not reported yet.
    """
    if tests is None:
        tests = static_tests(source, _module(path), path)
    if session.worker is None or not session.worker.alive:
        session.restart()
    name, label = _module(path), os.path.basename(path)
    what = "in the instructor tests of %s" % label
    listed, done, running = None, {}, None  # listed: the worker's list of tests; done: id -> outcome
    fixture_errors, load_error, lost = [], None, None
    file_deadline = time.monotonic() + timeout
    try:
        worker = session.worker
        chunks = [source[i:i + 1000] for i in range(0, len(source), 1000)]  # the wire caps one string
        msg = worker.request({"op": "unittest", "module": name, "filename": "instructor_tests/" + label,
                              "source": chunks, "track": getattr(session, "track", "torch")}, timeout, what)
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
    if listed is None and not tests:
        rep.notes.append("the instructor tests of %s did not run: %s" % (label, load_error or lost))
    reported = {m["id"] for m in listed or ()}

    def reason(meta):
        """Why a test of the file's text has no outcome."""
        if load_error:
            return load_error
        if lost and meta["id"] == running:
            return lost
        if lost:
            return "not run: an earlier test of %s stopped the worker: %s" % (label, lost)
        if fixture_errors:
            return "not run: " + "; ".join(fixture_errors)
        if listed is not None and meta["id"] not in reported:
            return "not run: the test run of %s did not include this test" % label
        return "not run: the test run of %s stopped before this test" % label

    rep.tests += _entries(tests, path, done, reason, rep)
    if fixture_errors and all(m["id"] in done for m in tests):  # e.g. tearDownClass, after every test
        rep.tests.append(_note(label, "errors outside the tests", "\n".join(fixture_errors)))
    uncounted = _uncounted(tests, listed or [], done)
    if uncounted:
        rep.tests.append(_note(label, "what the test run reported that the file's text does not show",
                               "None of this counts: the points, visibility and number of each test are "
                               "read from the file's text.\n" + "\n".join(uncounted)))


def _entries(tests, path, done, reason, rep):
    """The entries of a file's static tests: the outcome in `done` (id -> result frame), else reason(meta).

    A @leaderboard test fills rep.leaderboard instead.
    """
    out = []
    for meta in tests:
        outcome = done.get(meta["id"])
        if meta.get("leaderboard"):
            value = outcome.get("leaderboard_value") if outcome else None
            value = value if isinstance(value, str) else _float(value)
            if value is not None:
                rep.leaderboard.append({"name": meta["leaderboard"], "value": value,
                                        "order": "asc" if meta.get("leaderboard_order") == "asc" else "desc"})
            continue
        out.append(make_entry(meta, path, outcome, None if outcome else reason(meta)))
    return out


def _note(label, what, text):
    """A hidden 0-point entry about a test file, for the instructor."""
    return {"name": "%s: %s" % (label, what), "score": 0.0, "max_score": 0.0, "status": "failed",
            "visibility": "hidden", "extra_data": {"instructor_test": label}, "output": results.clip(text)}


def _uncounted(tests, listed, done, limit=20):
    """Lines on what the worker reported beyond the file's text: unknown tests, other weights."""
    static = {m["id"]: m for m in tests}
    lines = []
    for m in listed:
        mine = static.get(m["id"])
        if mine is None:
            ran = " (it ran)" if m["id"] in done else ""
            lines.append("- %s: not a test the file's text shows%s" % (_text(m["id"]), ran))
        elif _float(m.get("weight")) != mine["weight"]:
            lines.append("- %s: weight %s reported, %s in the file" % (
                _text(m["id"]), _text(m.get("weight")), results.fmt_points(mine["weight"] or 0)))
    return lines[:limit] + (["- and %d more" % (len(lines) - limit)] if len(lines) > limit else [])


def _text(x, limit=200):
    return repr(x)[:limit] if not isinstance(x, str) else x[:limit]


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

    meta: the test as static_tests reads it from the file: its weight, visibility, number, tags
    and name are the entry's, whatever the worker said. outcome: the worker's "result" frame
    (untrusted: only its verdict, messages, output and a @partial_credit test's score are used,
    the score clamped to [0, weight]), or None when the test never reported (then `reason` says
    why). A test skipped while it ran gets 0 points: only @unittest.skip, which static_tests
    reads, leaves a test out.
    """
    outcome = outcome if isinstance(outcome, dict) else None
    status = outcome.get("status") if outcome else "lost"
    messages = outcome.get("messages") if outcome else [reason]
    messages = [m for m in messages if isinstance(m, str)] if isinstance(messages, list) else []
    if status == "skipped":
        messages = ["the test was skipped while it ran (%s): a skipped test earns no points"
                    % (messages[0] if messages else "no reason given")]
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
    score_set = _float(outcome.get("score")) if outcome and meta.get("partial") else None
    failed = not passed
    if weight is not None:
        weight = max(weight, 0.0)
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
        entry["output"] = results.clip(output)
    visibility = meta.get("visibility") or "visible"
    entry["visibility"] = visibility if visibility in VISIBILITY else "hidden"  # a typo never shows a test
    if meta.get("number"):
        entry["number"] = str(meta["number"])
    entry["extra_data"] = {"instructor_test": os.path.basename(path), "id": str(meta["id"])}
    return entry


# --------------------------------------------------------------------------- the file's text
class InstructorFileError(ValueError):
    """An instructor test file whose points the grader cannot read from its text (file:line, why)."""


# Each decorator's parameters, in order (gradescope_utils.autograder_utils.decorators).
PARAMETERS = {"weight": ("val",), "partial_credit": ("weight",), "visibility": ("val",), "number": ("val",),
              "hide_errors": ("val",), "leaderboard": ("column_name", "sort_order"), "tags": ()}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    return ""


def _bindings(body, module_scope):
    """How many times each name is bound in a scope (a module's or a class's body), by its text.

    Nested functions, classes, lambdas and comprehensions are scopes of their own: only their
    own names count, and, for the module, the names they declare `global`.
    """
    counts = collections.Counter()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                counts[node.name] += 1
            if module_scope:
                counts.update(n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            counts[node.id] += 1
        elif isinstance(node, ast.alias):
            counts[(node.asname or node.name).split(".")[0]] += 1
        elif isinstance(node, ast.ExceptHandler) and node.name:
            counts[node.name] += 1
        elif getattr(node, "name", None) and type(node).__name__ in ("MatchAs", "MatchStar"):
            counts[node.name] += 1
        elif type(node).__name__ == "MatchMapping" and node.rest:
            counts[node.rest] += 1
        stack.extend(ast.iter_child_nodes(node))
    return counts


def _constants(body, module_scope):
    """{name: value} of a scope's constants: names bound once, by `NAME = <literal>` in the body."""
    counts = _bindings(body, module_scope)
    out = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            targets, value = [t.id for t in stmt.targets], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            targets, value = [stmt.target.id], stmt.value
        else:
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        out.update((t, literal) for t in targets if counts[t] == 1)
    return out, counts


class _Reader:
    """Reads gradescope-utils' decorators of one test file from its text (never runs it)."""

    def __init__(self, tree, label):
        self.label = label
        self.module_consts, self.module_bound = _constants(tree.body, True)
        self.aliases = {}  # local name -> decorator, e.g. `from ...decorators import weight as w`
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("decorators"):
                self.aliases.update((a.asname or a.name, a.name) for a in node.names if a.name in DECORATORS)

    def kind(self, dec):
        """The decorator's kind (a DECORATORS name, or "skip"), or None for any other decorator."""
        name = _dotted(dec.func if isinstance(dec, ast.Call) else dec)
        if name in self.aliases:
            return self.aliases[name]
        last = name.rsplit(".", 1)[-1]
        return last if last in DECORATORS or last == "skip" else None

    def fail(self, node, why):
        raise InstructorFileError(
            "%s:%d: %s. The grader reads each test's points, visibility, number, tags and the other "
            "decorator arguments from the file's text, without running it: write a literal (@weight(5)) "
            "or a constant assigned a literal once at the top of the module (POINTS = 5, then "
            "@weight(POINTS))" % (self.label, node.lineno, why))

    def value(self, node, scope):
        """The value of a decorator's argument: a literal, or a constant of the class or module."""
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        if isinstance(node, ast.Name):  # as Python looks it up in a class body: the class's, then the module's
            for consts, bound in (scope, (self.module_consts, self.module_bound)):
                if node.id in consts:
                    return consts[node.id]
                if bound[node.id]:
                    self.fail(node, "%s is not a constant: it is bound %s" % (
                        node.id, "more than once" if bound[node.id] > 1 else "to something other than a literal"))
            self.fail(node, "%s is not assigned in this file" % node.id)
        self.fail(node, "`%s` is not a literal" % ast.unparse(node))

    def arguments(self, dec, kind, scope):
        """The decorator's arguments by parameter name (tags: "tags", a list)."""
        if any(isinstance(a, ast.Starred) for a in dec.args) or any(k.arg is None for k in dec.keywords):
            self.fail(dec, "@%s's arguments are unpacked with * or **" % kind)
        values = [self.value(a, scope) for a in dec.args]
        if kind == "tags":
            return {"tags": [str(v) for v in values]}
        out = dict(zip(PARAMETERS[kind], values))
        out.update((k.arg, self.value(k.value, scope)) for k in dec.keywords)
        return out

    def meta(self, fn, scope, module, cls_name):
        """A test method's metadata, as the worker's unittest_meta reports it, from its text."""
        stand_in = type(cls_name, (unittest.TestCase,), {fn.name: lambda self: None, "__module__": module,
                                                          "__qualname__": cls_name})(fn.name)
        doc = ast.get_docstring(fn)
        meta = {"id": stand_in.id(), "name": doc.strip().split("\n")[0].strip() if doc else str(stand_in),
                "weight": None, "partial": False, "visibility": None, "number": None, "tags": None,
                "hide_errors": None, "leaderboard": None, "leaderboard_order": None, "line": fn.lineno}
        for dec in reversed(fn.decorator_list):  # innermost first: the outermost decorator has the last word
            kind = self.kind(dec)
            if kind in (None, "skip"):
                continue
            args = self.arguments(dec, kind, scope) if isinstance(dec, ast.Call) else {}
            if kind in ("weight", "partial_credit"):
                points = args.get(PARAMETERS[kind][0])
                if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 <= points < math.inf:
                    self.fail(dec, "@%s needs a number of points, 0 or more (not %r)" % (kind, points))
                meta["weight"], meta["partial"] = float(points), kind == "partial_credit"
            elif kind == "tags":
                meta["tags"] = args["tags"]
            elif kind == "hide_errors":
                meta["hide_errors"] = str(args.get("val", "Test failed"))
            elif kind == "leaderboard":
                meta["leaderboard"] = str(args.get("column_name"))
                meta["leaderboard_order"] = str(args.get("sort_order", "desc"))
            elif "val" in args:
                meta[kind] = str(args["val"])
        return meta


def _test_classes(tree):
    """{name: ClassDef} of the top-level classes that derive, in this file, from a *TestCase."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    tests = {}
    grew = True
    while grew:
        grew = False
        for name, cls in classes.items():
            if name not in tests and any(_dotted(b).endswith("TestCase") or _dotted(b) in tests for b in cls.bases):
                tests[name] = cls
                grew = True
    return tests, classes


def _lineage(cls, classes):
    """The class and its bases defined in the file, most derived first (the MRO, as far as the text shows)."""
    out, todo = [], [cls]
    while todo:
        c = todo.pop(0)
        if c not in out:
            out.append(c)
            todo += [classes[_dotted(b)] for b in c.bases if _dotted(b) in classes and classes[_dotted(b)] is not c]
    return out


def static_tests(source, module, label=None):
    """The tests of a test file as its text shows them: the only source of points, never the worker.

    Methods named test* of top-level classes deriving (in the file) from a *TestCase, inherited
    test methods of classes in the file included, in unittest's order (classes, then methods,
    sorted by name); tests under @unittest.skip are left out. Each test's metadata comes from
    gradescope-utils' decorators, whose arguments must be literals or constants assigned a
    literal (in the module, or in the class body); anything else raises InstructorFileError
    naming label:line (label: the file's name, default module + ".py"). Names and ids are made as
    unittest makes them.
    """
    label = label or module + ".py"
    tree = ast.parse(source, filename=label)
    reader = _Reader(tree, label)
    tests, classes = _test_classes(tree)
    out = []
    for cls_name in sorted(tests):
        lineage = _lineage(tests[cls_name], classes)
        if any(reader.kind(d) == "skip" for c in lineage for d in c.decorator_list):
            continue
        methods = {}  # name -> (FunctionDef, the scope of the class that defines it)
        for c in reversed(lineage):  # the most derived definition wins
            scope = _constants(c.body, False)
            methods.update((n.name, (n, scope)) for n in c.body
                           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"))
        for name in sorted(methods):
            fn, scope = methods[name]
            if not any(reader.kind(d) == "skip" for d in fn.decorator_list):
                out.append(reader.meta(fn, scope, module, cls_name))
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
    lines = ["Instructor tests: %s / %s." % (results.fmt_points(rep.score), results.fmt_points(rep.max_score))]
    lines += [n for n in rep.notes if n not in data.get("output", "")]
    if rep.output:
        lines.append("\nWhat ran during the instructor tests printed (first part):\n"
                     + results.clip(rep.output, 2000))
    data["output"] = (data.get("output", "") + "\n" + "\n".join(lines)).lstrip("\n")
    return data


def table(rep, width=140):
    """The terminal lines of the instructor tests: name, score/max, first line of the failure."""
    if not rep.files:
        return ""
    rows = ["instructor tests (%s)" % ", ".join(rep.files)]
    for t in rep.tests:
        points = "%4s/%-4s" % (results.fmt_points(t["score"]), results.fmt_points(t["max_score"])) \
            if "max_score" in t else "%9s" % ""
        lines = (t.get("output") or "failed").strip().split("\n")
        first = "passed" if t["status"] == "passed" else next(
            (ln for ln in lines if ln.startswith("Test Failed: ")), lines[-1])
        line = "  %s  %s  %s" % (points, t["name"], first)
        rows.append(line if len(line) <= width else line[:width - 3] + "...")
    rows.append("  %4s/%-4s  instructor tests total (%.1f s)" % (
        results.fmt_points(rep.score), results.fmt_points(rep.max_score), rep.seconds))
    rows += ["note: " + n for n in rep.notes]
    return "\n".join(rows)
