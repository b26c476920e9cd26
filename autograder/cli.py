"""Command line: python -m autograder VERB ...; every verb is a thin call into its module.

    grade SUBMISSION_DIR -o results.json [--device cpu|cuda|auto] [--seed N] [--functions a,b]   verbs/grade.py
    grade-batch DIR -o OUTDIR [--jobs J] [--shard K/N] [--seed N] ...   a whole class   verbs/batch/run.py
    merge OUT1 OUT2 ... -o MERGED     join the shards of grade-batch                     verbs/batch/report.py
    stubs [--check]            write assignment/ from solutions/ (or check it)           verbs/stubs.py
    list                       the graded functions and their points                      registry.py
    package [-o ZIP]           Gradescope's autograder zip (dist/autograder.zip)          verbs/package.py
    student [-o ZIP]           the student release with its public checker (dist/student.zip)  verbs/release.py
    handouts [...]             the write-up and the student notebooks (dist/handouts/)    handouts/build*.py
    bench [...]                timings (dist/bench.json; not in the Gradescope zip)       tools/bench.py
    documents [--check]        the documents' generated tables (points, rules, forbidden)  verbs/documents.py
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

from . import paths


def cmd_grade(args):
    from .engine import forkserver
    from .verbs import grade

    # The zygote imports torch while this process imports the kit and builds the plan: the first
    # worker is then a fork, ready at once (forkserver.py); restarts after a crash are forks too.
    server = None if args.no_forkserver else forkserver.start(wait=False)
    try:
        return grade.command(args)
    finally:
        if server is not None:
            server.stop()


def cmd_grade_batch(args):
    from .verbs import grade
    from .verbs.batch import run as batch

    try:
        shard = batch.parse_shard(args.shard) if args.shard else None
    except batch.BatchError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    opts = batch.Options(
        input=args.dir, output=args.output, jobs=args.jobs, seed=args.seed, shard=shard, device=args.device,
        config=args.config, track=args.track, functions=grade.split_list(args.functions), files=grade.split_list(args.files), budget=args.budget,
        instructor_tests=args.instructor_tests, no_instructor_tests=args.no_instructor_tests,
        restart=args.restart, use_forkserver=not args.no_forkserver,
        command=_again(*args.argv))
    return batch.run(opts)


def _again(*argv):
    """`python -m autograder ARGV` as a command to type again, with the kit's interpreter (_interpreter)."""
    return shlex.join([_interpreter(), "-m", "autograder", *argv])


def _interpreter():
    """The Python running the kit, as a command to type again: the kit's .venv/bin/python where it is that one
    (relative to the kit when the shell is there), not a bare `python` that may be another."""
    exe = sys.executable or "python"
    try:
        rel = os.path.relpath(exe, os.getcwd())
    except ValueError:
        return exe
    return rel if not rel.startswith("..") and len(rel) < len(exe) else exe


def cmd_merge(args):
    from .verbs.batch import report as batchreport

    try:
        paths, notes, incomplete = batchreport.merge(args.dirs, args.output)
    except batchreport.MergeError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    for line in incomplete:  # first, and on stderr too: a job log shows them, and the exit status fails the job
        print("incomplete: %s" % batchreport.printable(line), file=sys.stderr)
    if incomplete:
        print("once they are graded, merge again: %s" % _again("merge", *args.dirs, "-o", args.output), file=sys.stderr)
    for note in notes:
        print("note: %s" % batchreport.printable(note))
    print("merged %d folder%s into %s: %s%s" % (len(args.dirs), "" if len(args.dirs) == 1 else "s", args.output,
                                               ", ".join(os.path.basename(p) for p in paths),
                                               " (INCOMPLETE: see above; exit status 1)" if incomplete else ""))
    return 1 if incomplete else 0


def cmd_stubs(args):
    from .verbs import stubs

    stale = 0
    for track in paths.TRACKS:  # both tracks' stubs are committed, whichever course.toml chooses
        src, dst = paths.solutions(track), paths.assignment(track)
        try:
            if args.check:
                with tempfile.TemporaryDirectory() as tmp:
                    diffs = stubs.differences(src, dst, os.path.join(tmp, "fresh"))
                if diffs:
                    print("assignment/%s/ is out of date for: %s (run make stubs)" % (track, ", ".join(diffs)))
                    stale = 1
                else:
                    print("assignment/%s/ matches a fresh generation from solutions/%s/" % (track, track))
                continue
            names = stubs.generate(src, dst)
        except stubs.MarkerError as e:
            print("error: %s" % e, file=sys.stderr)
            return 2
        print("wrote %d files to assignment/%s/: %s" % (len(names), track, ", ".join(names)))
    return stale


def cmd_list(args):
    from . import registry

    total = 0
    for fn in registry.FUNCTIONS:
        print("%-28s %-14s %5g points, %d cases" % (fn.name, fn.file + ".py", fn.points, len(fn.cases)))
        total += fn.points
    print("%-28s %-14s %5g points" % ("total", "", total))
    return 0


def cmd_package(args):
    from .verbs import package as packaging

    try:
        packed = packaging.build(args.output, config_path=args.config)
    except packaging.PackagingError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print(packaging.listing(packed, args.output))
    return 0


def cmd_student(args):
    from .verbs import release

    return release.main(["--output", args.output] + (["--config", args.config] if args.config else []))


def cmd_handouts(args):
    """The write-up, then the student notebooks: handouts/build.py and handouts/build_notebooks.py."""
    for script, extra in (("build.py", args.writeup_args), ("build_notebooks.py", args.notebook_args)):
        code = subprocess.call([sys.executable, os.path.join(paths.KIT_ROOT, "handouts", script)]
                               + shlex.split(extra or ""), cwd=paths.KIT_ROOT)
        if code:
            return code
    return 0


def cmd_bench(argv):
    """tools/bench.py, which lives beside the package (it is no part of the Gradescope zip)."""
    if paths.KIT_ROOT not in sys.path:
        sys.path.insert(0, paths.KIT_ROOT)
    from tools import bench

    return bench.main(argv)


def cmd_documents(argv):
    from .verbs import documents

    return documents.main(argv)


PASSTHROUGH = {"bench": cmd_bench, "documents": cmd_documents}  # verbs whose options their own module parses


def _grading_options(p):
    """The options `grade` and `grade-batch` share: what is graded, where, and with which settings."""
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--functions", help="comma-separated function names (default: all)")
    p.add_argument("--files", help="comma-separated files, e.g. rnn_layers (default: all)")
    p.add_argument("--budget", type=float, help="overall time budget of one submission, in seconds")
    p.add_argument("--config", default=paths.COURSE_TOML,
                   help="the course's settings (default: course.toml at the top of the kit)")
    p.add_argument("--track", choices=paths.TRACKS,
                   help="what the submissions are written in (default: course.toml's track)")
    p.add_argument("--instructor-tests", metavar="DIR",
                   help="folder of instructor unittest files (default: instructor_tests/, run unless "
                        "--functions or --files narrow the grading)")
    p.add_argument("--no-instructor-tests", action="store_true", help="do not run the instructor tests")
    p.add_argument("--no-forkserver", action="store_true",
                   help="start each worker as a fresh interpreter rather than forking it from a pre-imported "
                        "one (forkserver.py)")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="without root, run student code even where the kernel gives no isolation (no user "
                        "namespace or seccomp): it then runs with YOUR rights and can change its score; every "
                        "output says so")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autograder")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade a submission folder")
    g.add_argument("submission")
    g.add_argument("-o", "--output", help="where to write Gradescope's results.json")
    g.add_argument("--seed", type=int, help="seed of the hidden cases (default: fresh each run)")
    _grading_options(g)
    g.add_argument("-v", "--verbose", action="store_true", help="print every failing check in full")
    g.set_defaults(func=cmd_grade)
    b = sub.add_parser("grade-batch", help="grade a whole class (a Gradescope export, or a folder of "
                                           "per-student folders or zips) against one plan")
    b.add_argument("dir", help="a Gradescope export (with submission_metadata.yml), or a folder of "
                               "per-student folders and/or zips")
    b.add_argument("-o", "--output", required=True,
                   help="output folder: results/<student>/results.json, scores.csv, summary.md, histogram.png")
    b.add_argument("--jobs", "-j", type=int, help="submissions graded at once (default: the number of CPUs)")
    b.add_argument("--seed", type=int, help="seed of the hidden cases (default: fresh, kept in OUTDIR/batch.json; "
                                            "with --shard, derived from the submissions' names)")
    b.add_argument("--shard", metavar="K/N", help="grade only the students whose name hashes to K of N (a student's "
                                                  "shard depends on their name alone); merge the N output folders "
                                                  "with `merge`, and give every shard the same --seed")
    _grading_options(b)
    b.add_argument("--restart", action="store_true",
                   help="discard what OUTDIR holds and start over (default: resume, grading only what is left)")
    b.set_defaults(func=cmd_grade_batch)
    m = sub.add_parser("merge", help="join the output folders of grade-batch shards")
    m.add_argument("dirs", nargs="+", help="output folders of grade-batch (same seed and settings)")
    m.add_argument("-o", "--output", required=True, help="folder for the merged scores.csv, summary and histogram")
    m.set_defaults(func=cmd_merge)
    s = sub.add_parser("stubs", help="generate assignment/ from solutions/")
    s.add_argument("--check", action="store_true", help="only check that assignment/ is up to date")
    s.set_defaults(func=cmd_stubs)
    ls = sub.add_parser("list", help="list the graded functions")
    ls.set_defaults(func=cmd_list)
    pk = sub.add_parser("package", help="build Gradescope's autograder zip")
    pk.add_argument("--config", help="the course.toml to pack (default: the kit's; its track is the zip's)")
    pk.add_argument("-o", "--output", default=os.path.join(paths.DIST, "autograder.zip"),
                    help="where to write the zip (default: dist/autograder.zip)")
    pk.set_defaults(func=cmd_package)
    st = sub.add_parser("student", help="build the student release (dist/student.zip) with its public checker")
    st.add_argument("-o", "--output", default=os.path.join(paths.DIST, "student.zip"))
    st.add_argument("--config", help="the course's settings (default: course.toml)")
    st.set_defaults(func=cmd_student)
    h = sub.add_parser("handouts", help="build the write-up and the student notebooks into dist/handouts/")
    h.add_argument("--writeup-args", help="options for handouts/build.py (quoted)")
    h.add_argument("--notebook-args", help="options for handouts/build_notebooks.py (quoted)")
    h.set_defaults(func=cmd_handouts)
    # bench and documents take their own options: main hands them everything after the verb (PASSTHROUGH)
    sub.add_parser("bench", help="timings: one submission, a batch, the reference vs torch.nn (options: "
                                      "python -m autograder bench --help)")
    sub.add_parser("documents", help="rewrite (or --check) the tables the documents generate from the registry "
                                     "(options: python -m autograder documents --help)")
    argv = list(argv) if argv is not None else sys.argv[1:]
    for stream in (sys.stdout, sys.stderr):  # text that came from student code must never stop a verb
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if argv[:1] and argv[0] in PASSTHROUGH:  # everything after the verb is its module's (argparse would read it)
        return PASSTHROUGH[argv[0]](argv[1:])
    args = p.parse_args(argv)
    args.argv = argv
    if getattr(args, "unsafe_no_isolation", False):
        from .engine import sandbox

        os.environ[sandbox.UNSAFE_ENV] = "1"
    return args.func(args)
