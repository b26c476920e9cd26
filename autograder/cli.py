"""Command line: python -m autograder {grade,stubs,list} ...

    grade SUBMISSION_DIR -o results.json [--device cpu|cuda|auto] [--seed N] [--functions a,b]
    stubs [--check]            write assignment/ from solutions/ (or check it is up to date)
    list                       the graded functions and their points
    package [-o ZIP]           Gradescope's autograder zip (default dist/autograder.zip)
    student [-o ZIP]           the student release with its public checker (default dist/student.zip)
"""
import argparse
import os
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _split(text):
    return [t for t in (text or "").split(",") if t]


def cmd_grade(args):
    from . import config, instructor, registry, results, runner, sandbox

    try:
        cfg = config.load(args.config)
        functions = config.apply(cfg, registry.select(_split(args.functions), _split(args.files)))
    except (KeyError, config.ConfigError) as e:
        print("error: %s" % (e.args[0] if isinstance(e, KeyError) else e), file=sys.stderr)
        return 2
    try:
        plan = runner.build_plan(functions, device=args.device, seed=args.seed)
        report = runner.grade(args.submission, plan, cfg.limits(), cfg.budget_seconds(args.budget))
        extra = instructor.InstructorReport()  # instructor_tests/: when grading everything, or asked to
        if not args.no_instructor_tests and (args.instructor_tests or not (args.functions or args.files)):
            extra = instructor.run(args.submission, args.instructor_tests, cfg.limits(),
                                   cfg.budget_seconds(args.budget), spent=report.seconds,
                                   timeout=cfg.instructor_timeout, use_cuda=plan.device == "cuda")
    except Exception as e:  # the grader itself failed: still leave a results.json behind
        details = traceback.format_exc()
        if isinstance(e, sandbox.EnvironmentFailure):
            details = "%s\n\n%s\n\n%s" % (e, ENVIRONMENT_ADVICE, details)
        print(details, file=sys.stderr)
        if args.output:
            results.write_json(failure_results(details), args.output)
        return 1
    print(results.table(report))
    if extra.files:
        print(instructor.table(extra))
    if args.verbose and report.score < report.max_score:
        print()
        print(results.details(report))
    if args.output:
        results.write_json(instructor.merge(results.gradescope(report, cfg.visibility, cfg.hidden_details), extra),
                           args.output)
    return 0


ENVIRONMENT_ADVICE = (
    "This is the grading machine's environment, not the submission: the worker is started before "
    "any student file is imported. Check that the grader's Python can import torch as an "
    "unprivileged user (the sandbox uid), that the memory given to the container is enough "
    "(AUTOGRADER_MEMORY_MB is what student code may use beyond torch itself), and run "
    "`python -m autograder grade solutions` on the same machine.")


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


def cmd_stubs(args):
    from . import stubs

    src, dst = os.path.join(ROOT, "solutions"), os.path.join(ROOT, "assignment")
    try:
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                diffs = stubs.differences(src, dst, os.path.join(tmp, "fresh"))
            if diffs:
                print("assignment/ is out of date for: %s (run make stubs)" % ", ".join(diffs))
                return 1
            print("assignment/ matches a fresh generation from solutions/")
            return 0
        names = stubs.generate(src, dst)
    except stubs.MarkerError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print("wrote %d files to assignment/: %s" % (len(names), ", ".join(names)))
    return 0


def cmd_list(args):
    from . import registry

    total = 0
    for fn in registry.FUNCTIONS:
        print("%-28s %-14s %5g points, %d cases" % (fn.name, fn.file + ".py", fn.points, len(fn.cases)))
        total += fn.points
    print("%-28s %-14s %5g points" % ("total", "", total))
    return 0


def cmd_package(args):
    from . import packaging

    try:
        packed = packaging.build(args.output)
    except packaging.PackagingError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print(packaging.listing(packed, args.output))
    return 0


def cmd_student(args):
    from . import release

    return release.main(["--output", args.output] + (["--config", args.config] if args.config else []))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autograder")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade a submission folder")
    g.add_argument("submission")
    g.add_argument("-o", "--output", help="where to write Gradescope's results.json")
    g.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    g.add_argument("--seed", type=int, help="seed of the hidden cases (default: fresh each run)")
    g.add_argument("--functions", help="comma-separated function names (default: all)")
    g.add_argument("--files", help="comma-separated files, e.g. rnn_layers (default: all)")
    g.add_argument("--budget", type=float, help="overall time budget in seconds")
    g.add_argument("--config", default=os.path.join(ROOT, "course.toml"),
                   help="the course's settings (default: course.toml at the top of the kit)")
    g.add_argument("--instructor-tests", metavar="DIR",
                   help="folder of instructor unittest files (default: instructor_tests/, run unless "
                        "--functions or --files narrow the grading)")
    g.add_argument("--no-instructor-tests", action="store_true", help="do not run the instructor tests")
    g.add_argument("-v", "--verbose", action="store_true", help="print every failing check in full")
    g.set_defaults(func=cmd_grade)
    s = sub.add_parser("stubs", help="generate assignment/ from solutions/")
    s.add_argument("--check", action="store_true", help="only check that assignment/ is up to date")
    s.set_defaults(func=cmd_stubs)
    ls = sub.add_parser("list", help="list the graded functions")
    ls.set_defaults(func=cmd_list)
    pk = sub.add_parser("package", help="build Gradescope's autograder zip")
    pk.add_argument("-o", "--output", default=os.path.join(ROOT, "dist", "autograder.zip"),
                    help="where to write the zip (default: dist/autograder.zip)")
    pk.set_defaults(func=cmd_package)
    st = sub.add_parser("student", help="build the student release (dist/student.zip) with its public checker")
    st.add_argument("-o", "--output", default=os.path.join(ROOT, "dist", "student.zip"))
    st.add_argument("--config", help="the course's settings (default: course.toml)")
    st.set_defaults(func=cmd_student)
    args = p.parse_args(argv)
    return args.func(args)
