"""The public checker: the assignment's public checks, run on a student's own machine.

It ships to students as it is: `make student` (verbs/release.py) copies the whole engine
(autograder/engine/) into the student release as checker/, beside public_checks.pt, the data of every
public check computed by the instructor: fixed inputs of each public case (its own seed, so that
the checker says the same every time), torch's answers, and what each known mistake computes on
them (the hints). A student runs it with

    python check.py                            every public check
    python check.py rnn_layers                 the functions of one file (or several files)
    python check.py rnn_forward lstm_backward  the named functions
    python check.py --json report.json         also write the report as JSON

and meets what Gradescope says about the public checks: the same engine grades their files (in a
separate process, one call at a time) on inputs of the same sizes and kinds, with the same
messages, hints and table. Gradescope grades them on values it draws at grading time, never on
these (plans.build_plan): the inputs shipped here earn no point, and their checks are not fresh
(outcome.fresh_pass). Hidden checks are not in the release.

Data format of public_checks.pt (FORMAT; only tensors, str, int, float, bool, None, lists and
dicts, so that torch.load(..., weights_only=True) reads it without running code):
- "functions": one dict per graded function: name, file, points, args (str, or {"dict": prefix}
  for a DictArg), returns, forward, rtol {dtype name: float}, time_axis, forbidden_ops {ATen
  name: what the student reads}, cases (its public cases:
  name, sizes, dtype, device, hidden, seed, opts [[key, value], ...], weight) and mistakes
  (hint, detector: the name of a detectors.DETECTORS entry, or None for a model's mistake), and speed
  (None, or its vectorisation check: sizes, inputs, and reference_ops, the reference solution's tensor
  operations on those inputs, which speed.counted compares the student's with).
- "checks": one dict per public check: function, case (index in that function's cases), seed,
  inputs, inputs64, expected, and models: for each mistake of the function, the outputs of its
  model on inputs64 ({output name: tensor}), or None.
- "track": what the student's functions are written in, "torch" or "numpy" (spec.TRACKS; the NumPy track's
  reference_ops count lines of Python, speed.counted), absent in releases made before the NumPy track.
- "limits": the course's call_timeout, memory_mb and budget (course.toml; None: the engine's
  default), which the checker applies as the grader does; AUTOGRADER_* variables override them.
"""
import argparse
import dataclasses
import functools
import os
import sys

import torch

from . import plans, speed
from .detectors import DETECTORS, matches_model
from .spec import Case, DictArg, GradedFunction, Mistake

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_FILE = "public_checks.pt"
FORMAT = 1


# --------------------------------------------------------------------------- the data
@functools.lru_cache(maxsize=None)
def load_data(path=None):
    """The release's data (see the module docstring), read without running any code."""
    data = torch.load(path or os.path.join(HERE, DATA_FILE), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RuntimeError("%s has an unknown format: download the release again" % DATA_FILE)
    return data


def _dtype(name):
    return getattr(torch, name)


def _not_shipped(*args, **kwargs):
    raise RuntimeError("the public checker has no input makers or oracles: its checks are precomputed")


def function_from_data(d):
    """A GradedFunction with the public cases only, no maker, no oracle and no mistakes.

    The mistakes of a function depend on the check (their models' outputs are precomputed per
    case): `load_plan` binds them to each check's own copy of the function.
    """
    cases = [Case(c["name"], dict(c["sizes"]), _dtype(c["dtype"]), device=c["device"], hidden=c["hidden"],
                  seed=c["seed"], opts=tuple((k, v) for k, v in c["opts"]), weight=c["weight"], rtol=c.get("rtol"))
             for c in d["cases"]]
    args = tuple(DictArg(a["dict"]) if isinstance(a, dict) else a for a in d["args"])
    return GradedFunction(
        name=d["name"], file=d["file"], points=d["points"], forward=d["forward"],
        args=args, returns=tuple(d["returns"]),
        make=_not_shipped, oracle=_not_shipped,
        cases=cases,
        rtol={_dtype(k): v for k, v in d["rtol"].items()},
        time_axis=dict(d["time_axis"]), forbidden_ops=dict(d["forbidden_ops"]))


def load_functions(path=None):
    """Every graded function of the release, in handout order (the grader's registry, public cases only)."""
    return [function_from_data(d) for d in load_data(path)["functions"]]


def _model_detector(outputs):
    """detect() of a model's mistake: model_mistake's comparison, with the model's precomputed outputs."""

    def detect(inputs, name, got, expected):
        return matches_model(outputs.get(name) if outputs else None, got)

    return detect


def bound_mistakes(mistakes, models):
    """The Mistakes of one check: mistakes (data dicts) with that check's model outputs."""
    out = []
    for m, outputs in zip(mistakes, models):
        detect = DETECTORS[m["detector"]] if m["detector"] else _model_detector(outputs)
        out.append(Mistake(m["hint"], detect))
    return out


def load_plan(functions, path=None, library=()):
    """A plans.Plan with the public checks of `functions` (load_functions' entries), in their order.
    library: the other functions a check may call (a backward's forward; default: load_functions())."""
    data = load_data(path)
    track = data.get("track", "torch")
    specs = {d["name"]: d for d in data["functions"]}
    wanted = {fn.name: fn for fn in functions}
    known = {fn.name: fn for fn in list(library or load_functions(path)) + list(functions)}
    checks = []
    cuda = plans.cuda_available()
    for c in data["checks"]:
        fn = wanted.get(c["function"])
        if fn is None or (fn.cases[c["case"]].device == "cuda" and not cuda):
            continue
        own = dataclasses.replace(fn, mistakes=bound_mistakes(specs[fn.name]["mistakes"], c["models"]))
        # fresh=False: the shipped inputs are feedback; only the grader's, drawn at grading time, earn points
        checks.append(plans.Prepared(own, fn.cases[c["case"]], c["seed"], c["inputs"], c["inputs64"],
                                     c["expected"], fresh=False, forward=known.get(fn.forward), track=track))
    # The vectorisation checks, counted (speed.counted): no reference solution ships to time.
    timings = [speed.Timing(fn, Case(speed.NAME, dict(s["sizes"]), torch.float32, weight=speed.WEIGHT),
                            dict(s["inputs"]), None, known.get(fn.forward), reference_ops=int(s["reference_ops"]),
                            track=track)
               for fn in functions for s in [specs[fn.name].get("speed")] if s]
    # kit: run as root, the grader hides its own folder from the sandbox user: here, this package.
    cuda = cuda and track == "torch"
    return plans.Plan(list(functions), checks, 0, "cuda" if cuda else "cpu", not cuda and track == "torch",
                      speed=timings, kit=HERE, track=track)


def course_limits(path=None):
    """(sandbox Limits, budget in seconds or None): the course's, then the environment's overrides."""
    from .sandbox import Limits

    course = load_data(path)["limits"]
    base = Limits()
    if course.get("call_timeout") is not None:
        base.call_timeout = float(course["call_timeout"])
    if course.get("memory_mb") is not None:
        base.memory_mb = int(course["memory_mb"])
    env = os.environ.get("AUTOGRADER_BUDGET")
    budget = float(env) if env else course.get("budget")
    return Limits.from_env(base), (float(budget) if budget is not None else None)


# --------------------------------------------------------------------------- reports
def report_dict(report):
    """A runner.Report as plain data (what --json writes): every check's verdict and message."""
    return {
        "score": report.score,
        "max_score": report.max_score,
        "notes": list(report.notes),
        "functions": [{
            "name": fr.fn.name,
            "file": fr.fn.file,
            "score": fr.score,
            "max_score": fr.max_score,
            "forbidden": sorted(set(fr.forbidden)),
            "static": list(fr.static),
            "checks": [{"name": c.name, "hidden": c.hidden, "weight": c.weight, "passed": c.passed,
                        "message": c.message} for c in fr.checks],
        } for fr in report.functions],
    }


# --------------------------------------------------------------------------- command line
FOOTER = ("These are the public checks only. Gradescope runs them too, and also hidden checks (other "
          "sizes and edge cases)\nthat count for points: passing everything here does not guarantee "
          "full marks there.")


def select(functions, words):
    """The functions named by words (files, with or without .py, and function names); all without words."""
    if not words:
        return list(functions)
    files = {w[:-3] if w.endswith(".py") else w for w in words}
    known_files = list(dict.fromkeys(fn.file for fn in functions))
    unknown = sorted(w for w in files if w not in known_files and w not in {fn.name for fn in functions})
    if unknown:
        raise KeyError("unknown file or function: %s (files: %s)" % (", ".join(unknown), ", ".join(known_files)))
    return [fn for fn in functions if fn.file in files or fn.name in files]


def _torch_visible_to_worker():
    """Whether `python -I` (how the worker starts: no user site-packages, no PYTHONPATH) finds torch."""
    import subprocess

    try:
        return subprocess.run([sys.executable, "-I", "-c", "import torch"], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv=None, submission=None):
    """Run the public checks. Returns 0: every one passed; 1: some failed; 2: bad usage; 3: could not run."""
    p = argparse.ArgumentParser(
        prog="python check.py",
        description="Run the assignment's public checks on your files, exactly as Gradescope runs them.")
    p.add_argument("only", nargs="*", metavar="FILE_OR_FUNCTION",
                   help="check only these files (rnn_layers, ...) or functions (rnn_forward, ...)")
    p.add_argument("--submission", default=submission or os.getcwd(),
                   help="the folder with your files (default: the folder of check.py)")
    p.add_argument("--json", metavar="PATH", help="also write the report (every check and message) as JSON")
    p.add_argument("--brief", action="store_true", help="print the table only, not every failing check")
    p.add_argument("--budget", type=float, help="overall time limit in seconds (default: the grader's)")
    args = p.parse_args(argv)

    from . import results, runner, sandbox

    # The code checked is the student's own, on the student's machine: no kernel layer is required.
    sandbox.REQUIRE_ISOLATION = False
    everything = load_functions()
    try:
        functions = select(everything, args.only)
    except KeyError as e:
        print("error: %s" % e.args[0], file=sys.stderr)
        return 2
    limits, budget = course_limits()
    try:
        report = runner.grade(args.submission, load_plan(functions, library=everything), limits,
                              args.budget if args.budget is not None else budget)
    except Exception as e:  # the engine itself could not run here (no student code is at fault)
        print("The checker could not run: %s" % e, file=sys.stderr)
        if os.geteuid() == 0:
            print("Run as root, it runs your code as an unprivileged user (uid 64000 and up), who must be "
                  "able to start %s: run check.py as an ordinary user, or keep Python outside a private "
                  "home folder." % sys.executable, file=sys.stderr)
        elif not _torch_visible_to_worker():
            print("Your code runs in a separate `%s -I` process, which does not see torch here (installed "
                  "with pip --user, or through PYTHONPATH?): install torch into this Python's own "
                  "site-packages, e.g. in a virtual environment." % sys.executable, file=sys.stderr)
        return 3
    print(results.table(report))
    if not args.brief and report.score < report.max_score:
        print()
        print(results.details(report))
    print()
    print(FOOTER)
    if args.json:
        results.write_json(report_dict(report), args.json)
    return 0 if report.score >= report.max_score else 1
