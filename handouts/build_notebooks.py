"""Build the notebooks: jupytext sources -> master notebooks -> `otter assign` -> student notebooks.

    .venv/bin/python handouts/build_notebooks.py [--out dist/handouts] [--work dist/otter] [--track numpy]

Sources: handouts/notebooks/NN_name.py, jupytext "percent" files in otter-grader's master format
(solutions and written answers inside otter's markers). For each one this writes:
- the master notebook, and otter's output for it (student and autograder versions), under --work;
- the student notebook into --out (dist/handouts/), beside what the notebooks need in the
  student's folder: data/ (the texts), notebook_checks.py (their bridge to check.py),
  export_answers.py (the written answers as a PDF, offline) and requirements.txt (everything a
  student installs, in one `pip install -r requirements.txt`), and track.py, through which the
  notebooks import the student's functions, its TRACK set to the course's track (course.toml, or
  --track): the notebooks are written once, in PyTorch, and on the NumPy track track.load converts
  tensors to arrays and back at the boundary. Otter's first cell of each student notebook is
  replaced by one that checks those packages first (see first_cell);
- the notebook autograder (otter's autograder notebook with its tests) under --work/NAME/autograder,
  for instructors only.
Then it proves that no student notebook holds a line of any solution: the master notebooks'
solution blocks and the fenced regions of solutions/*.py.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import jupytext
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from autograder import config, paths  # noqa: E402
from autograder.verbs import release  # noqa: E402  (the same solution lines the release audit uses)

SOURCES = os.path.join(HERE, "notebooks")
STUDENT = os.path.join(HERE, "student")  # shipped as they are beside the student notebooks
REQUIREMENTS = os.path.join(STUDENT, "requirements.txt")
TRACK_FILE = os.path.join(STUDENT, "track.py")  # its TRACK line is set to the course's track
TRACK_LINE = re.compile(r'^TRACK = "\w+"', re.M)
# What the first cell of a student notebook checks, for each package of REQUIREMENTS: the module it
# imports as (None: nothing to check from inside a running notebook) and what needs it. Without
# one that RUN needs, the cell stops with the install command; without another, it says what is
# missing and the notebook goes on.
RUN = "running the notebooks"
PACKAGES = {
    "torch": ("torch", RUN),
    "numpy": ("numpy", RUN),
    "matplotlib": ("matplotlib", RUN),
    "jupyter": (None, RUN),
    "otter-grader": ("otter", "the grader.check(...) cells"),
    "nbformat": ("nbformat", "export_answers.py"),
    "pypandoc_binary": ("pypandoc", "export_answers.py"),
    "typst": ("typst", "export_answers.py"),
}
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
MIN_LINE = 12  # shorter lines ("return h", "# (N, H)") are too common to prove a leak


class BuildError(RuntimeError):
    pass


def sources():
    return sorted(glob.glob(os.path.join(SOURCES, "[0-9][0-9]_*.py")))


def text(cell):
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def solution_lines(master):
    """Lines of the master notebook that only solutions hold: code between # BEGIN/END SOLUTION,
    lines marked # SOLUTION, and the cells between raw # BEGIN SOLUTION / # END SOLUTION cells."""
    out, inside_cells = set(), False
    for cell in master.cells:
        body = text(cell)
        if cell.cell_type == "raw" and body.strip().startswith("# BEGIN SOLUTION"):
            inside_cells = True
            continue
        if cell.cell_type == "raw" and body.strip().startswith("# END SOLUTION"):
            inside_cells = False
            continue
        inside = inside_cells
        for line in body.splitlines():
            s = line.strip()
            if s.startswith("# BEGIN SOLUTION"):
                inside = True
            elif s.startswith("# END SOLUTION"):
                inside = inside_cells
            elif inside or s.endswith("# SOLUTION"):
                out.add(s.replace("# SOLUTION", "").strip())
    return {s for s in out if len(s) > MIN_LINE}


def leaks(student, secret):
    """The secret lines that appear in a student notebook's text."""
    body = "\n".join(text(c) for c in student.cells)
    return sorted(s for s in secret if s in body)


def requirement_names(path=REQUIREMENTS):
    """The package names of a requirements file, in order (markers and versions left out)."""
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                name = re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]
                if name not in names:
                    names.append(name)
    return names


FIRST_CELL = '''# Run this cell first: it checks that this Python has what the assignment needs, then starts
# the checks (otter-grader). Everything installs with one command: pip install -r requirements.txt
import importlib.util, sys

NEEDED = {{  # pip name: (module, what needs it)
{needed}}}
RUN = {run!r}


class MissingPackages(ModuleNotFoundError):
    def _render_traceback_(self):  # IPython shows the message alone, not a traceback
        return ["MissingPackages: " + str(self)]


missing = [name for name, (module, _) in NEEDED.items() if importlib.util.find_spec(module) is None]
if missing or sys.version_info < (3, 10):
    how = ("Install everything with one command, in a terminal in this notebook's folder, with this "
           "Python (%s):\\n    pip install -r requirements.txt\\nor in a notebook cell: "
           "%%pip install -r requirements.txt\\nthen restart the kernel and run this cell again."
           % sys.executable)
    if sys.version_info < (3, 10):
        raise MissingPackages("this is Python %d.%d; the assignment needs Python 3.10 or newer. %s"
                              % (sys.version_info[:2] + (how,)))
    print("Missing: " + "; ".join("%s (for %s)" % (name, NEEDED[name][1]) for name in missing))
    print(how)
    if any(NEEDED[name][1] == RUN for name in missing):
        raise MissingPackages("this notebook cannot run without %s: pip install -r requirements.txt"
                              % ", ".join(name for name in missing if NEEDED[name][1] == RUN))

try:
    import notebook_checks  # the public checks, from check.py in this folder
    notebook_checks.short_errors()  # an unwritten function: one line; a failing check: its report
except ImportError:
    print("notebook_checks.py is not in this folder: open the notebook in the folder of your .py files")

if "otter-grader" in missing:
    class grader:  # a stand-in until otter-grader is installed
        @staticmethod
        def check(question):
            print("%s: not checked (otter-grader is missing): pip install -r requirements.txt" % question)
else:
    import otter
    grader = otter.Notebook({notebook!r})
'''


def first_cell(name, requirements=REQUIREMENTS):
    """The first cell of a student notebook, in place of otter's "Initialize Otter" cell: it checks
    the packages of requirements.txt (PACKAGES says how), then starts otter as that cell did."""
    names = requirement_names(requirements)
    unknown = [n for n in names if n not in PACKAGES]
    if unknown:
        raise BuildError("%s names packages that build_notebooks.PACKAGES does not know: %s"
                         % (requirements, ", ".join(unknown)))
    needed = "".join("    %r: %r,\n" % (n, PACKAGES[n]) for n in names if PACKAGES[n][0] is not None)
    return FIRST_CELL.format(needed=needed, run=RUN, notebook=name + ".ipynb")


def replace_init_cell(student, name):
    """Put first_cell in place of otter's init cell (the first cell, "# Initialize Otter")."""
    init = student.cells[0] if student.cells else None
    if init is None or init.cell_type != "code" or not text(init).startswith("# Initialize Otter"):
        raise BuildError("the student version of %s does not start with otter's init cell" % name)
    init.source = first_cell(name)


def build_one(src, out, work):
    name = os.path.splitext(os.path.basename(src))[0]
    folder = os.path.join(work, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    master = jupytext.read(src)
    master.metadata["kernelspec"] = KERNEL
    master.metadata.pop("jupytext", None)
    master_path = os.path.join(folder, name + ".ipynb")
    nbformat.write(master, master_path)
    r = subprocess.run([sys.executable, "-m", "otter", "assign", "--no-run-tests", "--no-pdfs",
                        master_path, os.path.join(folder, "dist")], capture_output=True, text=True)
    student_path = os.path.join(folder, "dist", "student", name + ".ipynb")
    if r.returncode != 0 or not os.path.exists(student_path):
        raise BuildError("otter assign failed on %s:\n%s%s" % (src, r.stdout[-3000:], r.stderr[-3000:]))
    student = nbformat.read(student_path, as_version=4)
    replace_init_cell(student, name)
    found = leaks(student, solution_lines(master) | release.fenced_lines())
    if found:
        raise BuildError("the student version of %s holds solution lines:\n  %s" % (name, "\n  ".join(found[:10])))
    nbformat.write(student, os.path.join(out, name + ".ipynb"))
    return name


def course_track(path=paths.COURSE_TOML):
    """The track course.toml names ("torch" when it names none). Raises BuildError."""
    try:
        return config.load(path).track
    except config.ConfigError as e:
        raise BuildError(str(e))


def track_source(track, path=TRACK_FILE):
    """The text of track.py with its TRACK line set to `track`."""
    if track not in paths.TRACKS:
        raise BuildError("unknown track %r (known: %s)" % (track, ", ".join(paths.TRACKS)))
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if len(TRACK_LINE.findall(source)) != 1:
        raise BuildError('%s must hold exactly one line starting TRACK = "..."' % path)
    return TRACK_LINE.sub('TRACK = "%s"' % track, source)


def build(out=os.path.join(ROOT, "dist", "handouts"), work=os.path.join(ROOT, "dist", "otter"), track=None):
    """Build every notebook, for `track` (None: course.toml's); returns their names. Raises BuildError."""
    source = track_source(course_track() if track is None else track)  # before anything is written
    os.makedirs(out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    names = [build_one(src, out, work) for src in sources()]
    if not names:
        raise BuildError("no notebook sources in %s" % SOURCES)
    data = os.path.join(HERE, "data")
    if os.path.isdir(data):
        shutil.rmtree(os.path.join(out, "data"), ignore_errors=True)
        shutil.copytree(data, os.path.join(out, "data"))
    for path in sorted(glob.glob(os.path.join(STUDENT, "*"))):
        if os.path.isfile(path) and path.endswith((".py", ".txt")):
            shutil.copy(path, out)
    with open(os.path.join(out, os.path.basename(TRACK_FILE)), "w", encoding="utf-8") as f:
        f.write(source)
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "dist", "handouts"))
    p.add_argument("--work", default=os.path.join(ROOT, "dist", "otter"))
    p.add_argument("--track", choices=paths.TRACKS, help="the track the notebooks call (default: course.toml's)")
    args = p.parse_args(argv)
    try:
        track = course_track() if args.track is None else args.track
        names = build(args.out, args.work, track)
    except BuildError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("wrote %d student notebooks to %s (%s track): %s" % (len(names), args.out, track, ", ".join(names)))
    print("otter's master, student and autograder versions: %s" % args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
