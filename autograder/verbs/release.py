"""The student release: `make student` writes dist/student.zip (python -m autograder student).

Everything in the zip sits under one folder, rnn_assignment/:
- the student files of assignment/ (the stubs and gradient_check.py), after checking that they
  match a fresh generation from solutions/;
- README.md for students: which files to edit, how to check them, what to upload;
- check.py and checker/, the public checker (engine/checker.py): the grading engine, autograder/engine/
  copied as it is (it imports nothing outside itself: engine_modules checks), which rebuilds the
  graded functions from public_checks.pt instead of autograder/parts/;
- checker/public_checks.pt: every public CPU check, computed here on the trusted side: the
  inputs from the public case's fixed seed (the grader grades the same sizes and kinds on inputs
  it draws at grading time, so no point is earned on these), their float64 copies, torch's
  answers, and the output of
  every model_mistake model on the check's float64 inputs, so that the checker gives the
  grader's hints without the models' code; with course.toml applied as `grade` applies it
  (points, whether float32 checks count, call timeout, memory limit, budget);
- handouts/ (optional step): the built handouts, copied from dist/handouts/ when that folder
  exists (never the sources in handouts/, whose master notebooks hold solutions).

What it must never hold: solutions/; autograder/parts/ (the part files define the hidden cases,
and their hint models are hand-written near-solutions); any line of a fenced solution region;
the name of a hidden case. `audit` checks all of it before anything is written, and
tests/test_release.py checks the written zip again.

The build is derived, never hand-edited, and deterministic: the same kit gives the same bytes.
"""
import argparse
import ast
import dataclasses
import io
import os
import stat
import sys
import tempfile

import torch

from .. import config, registry
from ..engine import archive, checker, detectors, plans, speed
from ..engine.spec import DictArg
from ..paths import DIST, KIT_ROOT, PACKAGE_DIR, TRACKS
from . import documents, stubs

ENGINE_DIR = os.path.join(PACKAGE_DIR, "engine")  # ships as the package PACKAGE, as it is
DEFAULT_OUTPUT = os.path.join(DIST, "student.zip")
TOP = "rnn_assignment"  # the folder the zip unpacks to
PACKAGE = "checker"  # the engine's package inside the release
BUILT_HANDOUTS = os.path.join("dist", "handouts")
THIRD_PARTY = ("torch", "numpy")  # all the engine copy may import besides the standard library
# ... and what it uses only where it is installed (the worker's seccomp layer: the checker runs a student's
# own code on the student's own machine and needs no kernel layer; isolation.confine says "not available")
OPTIONAL = ("pyseccomp",)
# Fenced lines that the shipped engine legitimately contains too (a loop over time in compare.py's
# hints): not solution code. Every other fenced line longer than MIN_LINE characters is a leak.
GENERIC_LINES = frozenset({"for t in range(T):"})
MIN_LINE = 12
# otter-grader's master markers: a handout holding one is a master copy. (Student notebooks keep
# "<!-- BEGIN QUESTION -->" around written questions, for the PDF export: that form is allowed.)
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "# BEGIN QUESTION", "# BEGIN TESTS",
                    "BEGIN HIDDEN")


class ReleaseError(Exception):
    """The release cannot be built, or would leak what students must not see."""


# --------------------------------------------------------------------------- public checks
def _plain(value, where):
    """Raise unless value is made only of what torch.load(weights_only=True) reads back."""
    if value is None or isinstance(value, (bool, int, float, str)) or torch.is_tensor(value):
        return
    if isinstance(value, list):
        for v in value:
            _plain(v, where)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ReleaseError("%s: key %r is not a str" % (where, k))
            _plain(v, where)
        return
    raise ReleaseError("%s: a %s cannot go into the release's data" % (where, type(value).__name__))


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _public(fn):
    """The cases of fn that the release ships: the public ones (its CUDA case runs where the student
    has a GPU)."""
    return [c for c in fn.cases if not c.hidden]


def _mistake_data(fn, mistake):
    names = [n for n, f in detectors.DETECTORS.items() if mistake.detect is f]
    if mistake.model is None and not names:
        raise ReleaseError("%s: a Mistake without a model whose detector is not in detectors.DETECTORS "
                           "(hint %r): the release cannot ship it" % (fn.name, mistake.hint[:60]))
    return {"hint": mistake.hint, "detector": None if mistake.model is not None else names[0]}


def _function_data(fn, timing=None):
    """fn's entry in the data file; timing: its vectorisation check (speed.Timing), whose input ships with
    the reference's count of tensor operations on it (speed.counted), never the reference itself."""
    return {
        "speed": None if timing is None else {
            "sizes": dict(timing.case.sizes), "inputs": dict(timing.inputs),
            "reference_ops": speed.reference_ops(timing)},
        "name": fn.name, "file": fn.file, "points": fn.points,
        "args": [{"dict": a.prefix} if isinstance(a, DictArg) else a for a in fn.args],
        "returns": list(fn.returns), "forward": fn.forward,
        "rtol": {_dtype_name(k): float(v) for k, v in fn.rtol.items()},
        "time_axis": dict(fn.time_axis),
        "forbidden_ops": dict(fn.forbidden_ops),
        "cases": [{"name": c.name, "sizes": dict(c.sizes), "dtype": _dtype_name(c.dtype), "device": c.device,
                   "hidden": c.hidden, "seed": c.seed, "opts": [[k, v] for k, v in c.opts], "weight": c.weight,
                   "rtol": c.rtol}
                  for c in _public(fn)],
        "mistakes": [_mistake_data(fn, m) for m in fn.mistakes],
    }


def _model_outputs(fn, mistake, inputs64):
    """What model_mistake's detect would compare with: the model's outputs (None if it fails)."""
    if mistake.model is None:
        return None
    before = {k: v.clone() for k, v in inputs64.items() if torch.is_tensor(v)}
    try:
        with torch.no_grad():
            out = mistake.model(inputs64)
    except Exception:  # the grader's detect raises too, and feedback.hints then gives no hint
        return None
    for k, v in before.items():
        if not torch.equal(v, inputs64[k]):
            raise ReleaseError("%s: the model of %r modifies its input %s in place" % (fn.name, mistake.hint[:60], k))
    if not isinstance(out, dict):
        return None
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()
            if isinstance(k, str) and torch.is_tensor(v)}


def course(root=KIT_ROOT, config_path=None):
    """(functions, Config): the registry's functions as this course grades them.

    course.toml (config.py; default: the kit's) may change points and drop the float32 checks;
    it is applied to copies of the registry's entries, as `python -m autograder grade` does.
    """
    cfg = config.load(config_path or os.path.join(root, "course.toml"))
    return config.apply(cfg, registry.FUNCTIONS), cfg


def public_data(functions, cfg, root=KIT_ROOT):
    """The data file's content (see checker.py): every public check of `functions`, in cfg's track."""
    data = {"format": checker.FORMAT, "functions": [], "checks": [], "track": cfg.track,
            "limits": {"call_timeout": cfg.call_timeout, "memory_mb": cfg.memory_mb, "budget": cfg.budget}}
    reference = os.path.join(root, "solutions", cfg.track)
    timings = {t.fn.name: t for t in speed.prepare(functions, reference, dict(registry.BY_NAME, **{
        fn.name: fn for fn in functions}), cfg.track)}
    for fn in functions:
        data["functions"].append(_function_data(fn, timings.get(fn.name)))
        for index, case in enumerate(_public(fn)):
            # the public case's own fixed seed, so that `python check.py` says the same every time (the
            # grader draws these cases' inputs afresh: runner.build_plan, public_inputs="fresh", so
            # nothing shipped here earns a point); torch's answer to a CUDA case is computed on the
            # CPU (float64: the same to within the case's tolerance)
            prep = plans.prepare(fn, dataclasses.replace(case, device="cpu"), 0, public_inputs="fixed")
            data["checks"].append({
                "function": fn.name, "case": index, "seed": prep.seed,
                "inputs": dict(prep.inputs), "inputs64": dict(prep.inputs64), "expected": dict(prep.expected),
                "models": [_model_outputs(fn, m, prep.inputs64) for m in fn.mistakes],
            })
    _plain(data, "public_checks.pt")
    return data


def _saved(data):
    buf = io.BytesIO()
    torch.save(data, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- the engine
def import_problems(name, source):
    """Why the engine module `name` (its source) could not ship as it is: imports of anything but the
    engine's own modules, the standard library, THIRD_PARTY and OPTIONAL. Empty when it can."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > 1:
                problems.append("%s.py imports from %s (outside the engine)" % (name, "." * node.level + (node.module or "")))
            continue
        if isinstance(node, ast.Import):
            tops = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            tops = [node.module.split(".")[0]]
        else:
            continue
        problems += ["%s.py imports %s: %s" % (name, top, "the kit by its name" if top == "autograder" else
                                                 "students have only torch and numpy")
                     for top in tops if top not in sys.stdlib_module_names and top not in THIRD_PARTY + OPTIONAL]
    return problems


def engine_modules():
    """{module: source} of the engine (autograder/engine/), every module as it is, after checking that
    none imports anything outside it (import_problems)."""
    found, problems = {}, []
    for file in sorted(os.listdir(ENGINE_DIR)):
        if file.endswith(".py"):
            with open(os.path.join(ENGINE_DIR, file), encoding="utf-8") as f:
                found[file[:-3]] = f.read()
            problems += import_problems(file[:-3], found[file[:-3]])
    if problems:
        raise ReleaseError("the engine must ship as it is, but: " + "; ".join(problems))
    return found


LAUNCHER = '''"""Check your files with the assignment's public checks, as Gradescope does: python check.py

    python check.py                            every public check
    python check.py rnn_layers                 the functions of one file (or several files)
    python check.py rnn_forward lstm_backward  the named functions
    python check.py --json report.json         also write the report as JSON

Generated by `make student`, with the folder %s/ beside it: do not edit either.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    if sys.version_info < (3, 10):
        sys.exit("check.py needs Python 3.10 or newer (this is %%d.%%d)" %% sys.version_info[:2])
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("check.py needs PyTorch in this Python (%%s): pip install torch" %% sys.executable)
    sys.path.insert(0, HERE)
    from %s.checker import main

    sys.exit(main(submission=HERE))
''' % (PACKAGE, PACKAGE)


def package_files(data_bytes):
    """{path inside the release: bytes} of check.py and the checker package."""
    files = {"check.py": LAUNCHER.encode()}
    pkg = PACKAGE + "/"
    for name, source in engine_modules().items():
        files[pkg + name + ".py"] = source.encode()
    files[pkg + checker.DATA_FILE] = data_bytes
    return files


# --------------------------------------------------------------------------- student files
def student_files(root=KIT_ROOT, track="torch"):
    """{name: bytes} of assignment/<track>/, after checking it matches a fresh generation from solutions/<track>/."""
    src, dst = os.path.join(root, "solutions", track), os.path.join(root, "assignment", track)
    with tempfile.TemporaryDirectory() as tmp:
        diffs = stubs.differences(src, dst, os.path.join(tmp, "fresh"))
    if diffs:
        raise ReleaseError("assignment/%s/ is out of date for %s: run make stubs first" % (track, ", ".join(diffs)))
    out = {}
    for name in sorted(os.listdir(dst)):
        if name.endswith(".py"):
            with open(os.path.join(dst, name), "rb") as f:
                out[name] = f.read()
    missing = [f + ".py" for f in registry.FILES if f + ".py" not in out]
    if missing:
        raise ReleaseError("assignment/%s/ lacks %s" % (track, ", ".join(missing)))
    return out


def handout_files(root=KIT_ROOT):
    """{path: bytes} of the built handouts (dist/handouts/), or {} while there are none.

    Optional step: the handouts are built elsewhere (`make handouts`); only their student build
    is shipped. A file holding an otter-grader solution marker stops the release.
    """
    top = os.path.join(root, BUILT_HANDOUTS)
    out = {}
    if not os.path.isdir(top):
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", "~")):
                continue
            path = os.path.join(dirpath, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise ReleaseError("%s is not a regular file (a link?)" % path)
            with open(path, "rb") as f:
                data = f.read()
            rel = os.path.relpath(path, top).replace(os.sep, "/")
            if any(m.encode() in data for m in SOLUTION_MARKERS):
                raise ReleaseError("%s/%s holds a solution marker: ship the student build only"
                                   % (BUILT_HANDOUTS, rel))
            out[rel] = data  # beside the student's files: the notebooks import them from their own folder
    return out


TRACK_WORDS = {  # what the students' README says of the track (course.toml's track)
    "torch": {"in": "in PyTorch tensor operations", "array": "tensor", "library": "PyTorch"},
    "numpy": {"in": "in NumPy (arrays in, arrays out: no torch operator and no autograd library)",
              "array": "array", "library": "NumPy"},
}


def readme(functions, has_handouts=False, root=KIT_ROOT, track="torch"):
    """The students' README.md: what to edit, the points and the rules, how to check it, what to upload.

    Its tables (points, rules, what is forbidden, the written questions) are documents.regions(), the same
    generated text as in the write-up and the kit's docs."""
    files = list(dict.fromkeys(fn.file for fn in functions))
    uploads = ", ".join("`%s.py`" % f for f in files)
    count = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(len(files), str(len(files)))
    handouts = ("\nRead the write-up first (`writeup.html`, or `writeup.pdf`). The notebooks (`01_...ipynb` to "
                "`04_...ipynb`) run in this folder with your files: they hold explanations, gradient checks, "
                "the public checks (`grader.check(...)`), one experiment each and the written questions; "
                "`python export_answers.py NOTEBOOK.ipynb` makes the PDF of your written answers. Everything "
                "they need installs with one command, in this folder: `pip install -r requirements.txt`.\n"
                if has_handouts else "")
    text = """# Recurrent networks: the assignment

Write the layers of the {count} files below by hand, {words[in]}: every function
raises `NotImplementedError` until you replace its body. Keep each function's name, arguments
and return values as they are (the docstrings say what each one takes and returns).
{handouts}
{b[points]}
{e[points]}

`gradient_check.py` helps you compare a backward pass with numerical gradients; it is not graded.

## The rules

{b[rules]}
{e[rules]}

What the first two rules forbid, and the names the grader knows it by:

{b[forbidden]}
{e[forbidden]}

## Check your work: `python check.py`

Run it in this folder, next to your files:

    python check.py                    # every public check
    python check.py rnn_layers         # only the functions of rnn_layers.py
    python check.py rnn_step_backward  # only one function
    python check.py --help

It needs Python 3.10 or newer and PyTorch (`pip install torch`; the CPU build is enough{torch_too}), on
Linux (Windows: use WSL; or Google Colab). It runs the public checks as Gradescope does: your
code runs in a separate process, one call at a time, on inputs of the same sizes and kinds, and
you get the same messages and hints, and the same table: each function, its score on these
checks and its first failing check, then every failing check in full. The inputs here are fixed,
so its output is the same every time; Gradescope draws new values of them when it grades (the
numbers in its messages differ), so code that is right here for these values only earns nothing
there.

## Hidden checks

Gradescope also runs hidden checks (other sizes and edge cases), which count for points. There
they show only pass or fail until grades are published. Passing every public check here is a
good sign, not a guarantee of full marks: test your code on your own cases too.

Gradescope also times each sequence-level function (RNN, LSTM, embedding, affine, loss,
attention) on a larger input against the reference solution; a function more than 10x slower
(a Python loop over the batch, say) fails one small visible check, "vectorised". Loop over time
steps only. Here, with no reference solution to time, `check.py` runs the same check by counting
{counted} against the reference's count.
{gpu}

## Submit

Two Gradescope assignments:

1. **The code assignment**: upload these {count} files: {uploads}
   (the `.py` files themselves, not a zip of this folder or a notebook). If your files import a
   helper module of your own, upload it too.
2. **The written assignment**: the PDF of your written answers (`python export_answers.py
   NOTEBOOK.ipynb`, one notebook at a time), with each question matched to its page. Its
   questions, graded by hand:

{b[written]}
{e[written]}

## What else is here

| path | what it is |
|---|---|
| `check.py`, `checker/` | the public checker: a copy of the grader with the public checks' data (do not edit) |
| `gradient_check.py` | numerical gradients, to test your backward passes |
""".format(uploads=uploads, handouts=handouts, count=count, words=TRACK_WORDS[track],
           torch_too="; the checker runs on it, even for NumPy code" if track == "numpy" else "",
           counted="the lines of your Python that run" if track == "numpy" else "your call's tensor operations",
           gpu=GPU_WORDS[track],
           b={name: documents.begin(name) for name in documents.BLOCK},
           e={name: documents.end(name) for name in documents.BLOCK})
    return documents.fill(text, documents.regions(functions, root, track=track))


GPU_WORDS = {
    "torch": """
Gradescope grades on CPUs only: its machines have no GPU, so no CUDA check counts there. Where
you have a GPU, the checks here also run one case on CUDA, which tells you whether your code
keeps the input's device.
""",
    "numpy": "",  # NumPy runs on the CPU: the NumPy track has no CUDA checks
}


def written_outline(root=KIT_ROOT):
    """The written assignment's outline for Gradescope, as `make student` prints it: every written question of
    the notebooks (documents.written_questions: otter's manual questions), with its points."""
    questions = documents.written_questions(root)
    if not questions:
        return "(no written questions in %s)" % documents.NOTEBOOKS
    lines = ["The written assignment (%s, graded by hand): on Gradescope, a second assignment, a Homework / "
             "Problem Set that students upload (a PDF, pages matched to questions), with this outline:"
             % documents.written_total(questions)]
    for number, q in enumerate(questions, 1):
        lines.append("  %2d. %-48s %g points" % (number, "%s, %s" % (q.notebook, q.title), q.points))
    return "\n".join(lines)


# --------------------------------------------------------------------------- audit
def fenced_lines(root=KIT_ROOT):
    """Stripped lines longer than MIN_LINE of every fenced solution region of solutions/<track>/*.py, both
    tracks (a release of one track must not hold the other's solutions either)."""
    out = set()
    for track in TRACKS:
        out |= _fenced(os.path.join(root, "solutions", track))
    return out - GENERIC_LINES


def _fenced(folder):
    out = set()
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        inside = False
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for line in f:
                text = line.strip()
                if text == stubs.BEGIN:
                    inside = True
                elif text == stubs.END:
                    inside = False
                elif inside and len(text) > MIN_LINE:
                    out.add(text)
    return out


def hidden_case_names():
    """Names of the registry's hidden cases that no public case shares, and that say something: a
    bare size ("T=1", "k = 1") is ordinary prose in a handout and no secret."""
    public = {c.name for fn in registry.FUNCTIONS for c in fn.cases if not c.hidden}
    hidden = {c.name for fn in registry.FUNCTIONS for c in fn.cases if c.hidden} - public
    return {name for name in hidden if len(name) > MIN_LINE}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def audit(files, data, root=KIT_ROOT):
    """Raise ReleaseError if the release {path: bytes} (with its data) shows what it must not."""
    problems = []
    for path in files:
        parts = path.split("/")
        if parts[0] in ("solutions", "tests", "autograder") or "parts" in parts:
            problems.append("%s: a kit folder that must not ship" % path)
    leaks, hidden = fenced_lines(root), hidden_case_names()
    for path, blob in sorted(files.items()):
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary: the data file is checked below, through its content
        problems += ["%s holds a line of a solution: %r" % (path, line) for line in sorted(leaks) if line in text]
        problems += ["%s names the hidden case %r" % (path, name) for name in sorted(hidden) if name in text]
    for fn in data["functions"]:
        problems += ["data: %s ships a hidden case %r" % (fn["name"], c["name"]) for c in fn["cases"] if c["hidden"]]
    names = set(_strings(data))
    problems += ["data holds the hidden case name %r" % n for n in sorted(hidden & names)]
    if problems:
        raise ReleaseError("the release would leak:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- the zip
def contents(root=KIT_ROOT, config_path=None):
    """{path inside TOP: bytes} of the whole release, audited."""
    functions, cfg = course(root, config_path)
    data = public_data(functions, cfg, root)
    files = dict(student_files(root, cfg.track))
    handouts = handout_files(root)
    clash = sorted(set(files) & set(handouts))
    if clash:
        raise ReleaseError("%s/ holds files that the release makes itself: %s" % (BUILT_HANDOUTS, ", ".join(clash)))
    files.update(handouts)
    files["README.md"] = readme(functions, bool(handouts), root, cfg.track).encode()
    files.update(package_files(_saved(data)))
    audit(files, data, root)
    return files


def build(output=DEFAULT_OUTPUT, root=KIT_ROOT, config_path=None):
    """Write the release zip to `output` (atomically). Returns {member name: size}."""
    files = contents(root, config_path)
    archive.write_zip(output, [("%s/%s" % (TOP, p), files[p], 0o644) for p in sorted(files)])
    return {"%s/%s" % (TOP, p): len(files[p]) for p in sorted(files)}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m autograder student", description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help="where to write the zip (default dist/student.zip)")
    p.add_argument("--config", help="the course's settings (default: course.toml at the top of the kit)")
    args = p.parse_args(argv)
    try:
        members = build(args.output, config_path=args.config)
    except (ReleaseError, stubs.MarkerError, config.ConfigError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    for name, size in members.items():
        print("%9d  %s" % (size, name))
    print("wrote %s: %d files, %d bytes" % (args.output, len(members), os.path.getsize(args.output)))
    if not handout_files():
        print("(no handouts: dist/handouts/ does not exist yet; build them first to include them)")
    print()
    print(written_outline())
    return 0


if __name__ == "__main__":
    sys.exit(main())
