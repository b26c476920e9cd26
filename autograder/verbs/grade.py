"""The verb `grade`: one submission, start to end, the one sequence `grade` and `grade-batch` both run.

    plan (registry.plan, once) -> runner.grade (the engine) -> instructor tests -> results.json dictionary

`command` is `python -m autograder grade`. `grade_submission` returns an `Outcome` and never raises for the grader's own failure: when something on
the trusted side breaks (the worker cannot start, an oracle raises, a bug in the kit), the
Outcome holds the traceback and the results.json Gradescope must still get, with a visible
"autograder failed" entry and the details hidden from the student. A KeyboardInterrupt (or any
other BaseException) is not a grader failure and goes through.

The heavy modules (torch) are imported inside the functions, so that `cli.py` can import this one
for `list`, `stubs` and `package` at no cost.
"""
import traceback
from dataclasses import dataclass
from typing import Any, Optional

ENVIRONMENT_ADVICE = (
    "This is the grading machine's environment, not the submission: the worker is started before "
    "any student file is imported. Check that the grader's Python can import torch as an "
    "unprivileged user (the sandbox uid), that the memory given to the container is enough "
    "(AUTOGRADER_MEMORY_MB is what student code may use beyond torch itself), and run "
    "`python -m autograder grade solutions` on the same machine.")


@dataclass
class Outcome:
    """What grading one submission gave: results.json's dictionary, and the reports behind it."""

    data: dict  # Gradescope's results.json
    report: Any = None  # outcome.Report (None when the grader failed)
    extra: Any = None  # instructor.InstructorReport (empty when the instructor tests did not run)
    failure: Optional[str] = None  # the traceback when the grader itself failed

    @property
    def failed(self):
        return self.failure is not None


def failure_results(tb):
    """results.json when the grader itself failed: a visible entry, the details hidden (instructors see them)."""
    return {
        "score": 0.0,
        "output": "The autograder failed (not your code's fault). Your instructor has the details; "
                  "please tell them.",
        "tests": [
            {"name": "autograder failed", "score": 0.0, "max_score": 0.0, "visibility": "visible",
             "output": "The autograder failed before it could grade this submission.", "tags": ["autograder"]},
            {"name": "autograder failure (traceback)", "score": 0.0, "max_score": 0.0, "visibility": "hidden",
             "output": tb[-8000:], "tags": ["autograder"]},
        ],
    }


def failed(exc):
    """The Outcome of a grader failure, called from inside the `except` that caught `exc`."""
    from ..engine import sandbox

    details = traceback.format_exc()
    if isinstance(exc, sandbox.EnvironmentFailure):
        details = "%s\n\n%s\n\n%s" % (exc, ENVIRONMENT_ADVICE, details)
    return Outcome(failure_results(details), failure=details)


def split_list(text):
    """The names of a comma-separated option (--functions, --files): none when it is absent."""
    return [t for t in (text or "").split(",") if t]


def runs_instructor_tests(disabled, folder, narrowed):
    """The rule of both commands: instructor tests run when grading everything, or when asked to."""
    return not disabled and bool(folder or not narrowed)


def grade_submission(submission, plan, cfg, budget=None, instructor_tests=None, run_instructor=True):
    """Grade one submission folder against a plan built once (registry.plan).

    cfg: config.Config (limits, budget, visibility); budget: seconds (--budget), else cfg's;
    instructor_tests: their folder (None: instructor_tests/); run_instructor: whether they run.
    """
    from . import instructor
    from ..engine import results, runner

    try:
        seconds = cfg.budget_seconds(budget)
        report = runner.grade(submission, plan, cfg.limits(), seconds)
        extra = instructor.InstructorReport()
        if run_instructor:
            extra = instructor.run(submission, instructor_tests, cfg.limits(), seconds, spent=report.seconds,
                                   timeout=cfg.instructor_timeout, use_cuda=plan.device == "cuda", track=plan.track)
        data = instructor.merge(results.gradescope(report, cfg.visibility, cfg.hidden_details), extra)
    except Exception as e:  # the grader itself failed: still leave a results.json behind
        return failed(e)
    return Outcome(data, report, extra)


def plan_and_grade(submission, functions, cfg, device="auto", seed=None, **kw):
    """grade_submission with a plan of its own (a failing plan is a grader failure)."""
    from .. import registry

    try:
        plan = registry.plan(functions, device=device, seed=seed, track=cfg.track)
    except Exception as e:
        return failed(e)
    return grade_submission(submission, plan, cfg, **kw)


def write(outcome, path):
    """Write the Outcome's results.json atomically."""
    from ..engine import results

    results.write_json(outcome.data, path)


def command(args):
    """`python -m autograder grade SUBMISSION [-o results.json] ...` (cli.py parses args). Returns the exit
    status: 0 graded, 1 the grader failed (results.json still written), 2 bad usage or course.toml."""
    import sys

    from .. import config, registry
    from ..engine import results
    from . import instructor

    try:
        cfg = config.load(args.config)
        if getattr(args, "track", None):
            cfg.track = args.track
        functions = config.apply(cfg, registry.select(split_list(args.functions), split_list(args.files)))
    except (KeyError, config.ConfigError) as e:
        print("error: %s" % (e.args[0] if isinstance(e, KeyError) else e), file=sys.stderr)
        return 2
    # instructor_tests/: when grading everything, or asked to (--instructor-tests)
    run_instructor = runs_instructor_tests(args.no_instructor_tests, args.instructor_tests,
                                           bool(args.functions or args.files))
    outcome = plan_and_grade(args.submission, functions, cfg, device=args.device, seed=args.seed,
                             budget=args.budget, instructor_tests=args.instructor_tests,
                             run_instructor=run_instructor)
    if outcome.failed:
        print(outcome.failure, file=sys.stderr)
        if args.output:
            write(outcome, args.output)
        return 1
    if args.output:  # first: whatever the terminal does with the table, Gradescope gets its results
        write(outcome, args.output)
    print(results.table(outcome.report))
    if outcome.extra.files:
        print(instructor.table(outcome.extra))
    if args.verbose and outcome.report.score < outcome.report.max_score:
        print()
        print(results.details(outcome.report))
    return 0
