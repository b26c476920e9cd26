"""Build the notebooks: jupytext sources -> master notebooks -> `otter assign` -> student notebooks.

    .venv/bin/python handouts/build_notebooks.py [--out dist/handouts] [--work dist/otter]

Sources: handouts/notebooks/NN_name.py, jupytext "percent" files in otter-grader's master format
(solutions and written answers inside otter's markers). For each one this writes:
- the master notebook, and otter's output for it (student and autograder versions), under --work;
- the student notebook into --out (dist/handouts/), beside what the notebooks need in the
  student's folder: data/ (the texts), notebook_checks.py (their bridge to check.py) and
  export_answers.py (the written answers as a PDF, offline);
- the notebook autograder (otter's autograder notebook with its tests) under --work/NAME/autograder,
  for instructors only.
Then it proves that no student notebook holds a line of any solution: the master notebooks'
solution blocks and the fenced regions of solutions/*.py.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

import jupytext
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from autograder.verbs import release  # noqa: E402  (the same solution lines the release audit uses)

SOURCES = os.path.join(HERE, "notebooks")
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
    found = leaks(student, solution_lines(master) | release.fenced_lines())
    if found:
        raise BuildError("the student version of %s holds solution lines:\n  %s" % (name, "\n  ".join(found[:10])))
    shutil.copy(student_path, os.path.join(out, name + ".ipynb"))
    return name


def build(out=os.path.join(ROOT, "dist", "handouts"), work=os.path.join(ROOT, "dist", "otter")):
    """Build every notebook; returns their names. Raises BuildError."""
    os.makedirs(out, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    names = [build_one(src, out, work) for src in sources()]
    if not names:
        raise BuildError("no notebook sources in %s" % SOURCES)
    data = os.path.join(HERE, "data")
    if os.path.isdir(data):
        shutil.rmtree(os.path.join(out, "data"), ignore_errors=True)
        shutil.copytree(data, os.path.join(out, "data"))
    for path in sorted(glob.glob(os.path.join(HERE, "student", "*.py"))):
        shutil.copy(path, out)
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "dist", "handouts"))
    p.add_argument("--work", default=os.path.join(ROOT, "dist", "otter"))
    args = p.parse_args(argv)
    try:
        names = build(args.out, args.work)
    except BuildError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("wrote %d student notebooks to %s: %s" % (len(names), args.out, ", ".join(names)))
    print("otter's master, student and autograder versions: %s" % args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
