"""The notebooks, as students get them: otter-grader builds the student versions; each runs end to
end in a student's folder against the reference solutions (HANDOUT_FAST=1: smaller training runs)
and reaches the results it states; against the stubs the first failing cell shows the stub's
message in one line; the written answers export to PDF offline; the student zip carries them.
"""
import os
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
from helpers import ROOT, SOLUTIONS
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.verbs import release

sys.path.insert(0, os.path.join(ROOT, "handouts"))
import build_notebooks  # noqa: E402

NAMES = [os.path.splitext(os.path.basename(p))[0] for p in build_notebooks.sources()]
TIMEOUT = 240  # seconds for one cell


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The built handouts (write-up and student notebooks) and an unpacked student release."""
    top = tmp_path_factory.mktemp("notebooks")
    out, work = str(top / "handouts"), str(top / "otter")
    build_notebooks.build(out, work)
    writeup = os.path.join(ROOT, "handouts", "build.py")
    if os.path.exists(writeup):
        r = subprocess.run([sys.executable, writeup, "--out", out], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    zip_path = str(top / "student.zip")
    release.build(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(str(top / "release"))
    return {"out": out, "work": work, "release": os.path.join(str(top / "release"), release.TOP)}


def student_folder(built, dst, code=None):
    """A student's folder: the release (stubs, check.py), the built handouts, and `code`'s .py files."""
    shutil.copytree(built["release"], dst)
    shutil.copytree(built["out"], dst, dirs_exist_ok=True)
    if code:
        for name in os.listdir(code):
            if name.endswith(".py"):
                shutil.copy(os.path.join(code, name), dst)
    return dst


def execute(folder, name, monkeypatch):
    monkeypatch.setenv("HANDOUT_FAST", "1")
    monkeypatch.setenv("RNN_ASSIGNMENT_DIR", folder)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(os.path.join(folder, name + ".ipynb"), as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": folder}})
    try:
        client.execute()
    except CellExecutionError as e:
        return nb, e
    return nb, None


def test_there_are_four_notebooks_one_per_student_file():
    assert len(NAMES) == 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_holds_no_solution_and_asks_for_answers(built, name):
    student = nbformat.read(os.path.join(built["out"], name + ".ipynb"), as_version=4)
    master = nbformat.read(os.path.join(built["work"], name, name + ".ipynb"), as_version=4)
    secret = build_notebooks.solution_lines(master) | release.fenced_lines()
    assert not build_notebooks.leaks(student, secret)
    body = "\n".join(build_notebooks.text(c) for c in student.cells)
    assert "BEGIN SOLUTION" not in body and "# SOLUTION" not in body
    assert "grader.check(" in body  # the visible checks
    assert "<!-- BEGIN QUESTION -->" in body  # the written questions


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_against_the_solutions_and_reaches_its_stated_result(built, name, tmp_path, monkeypatch):
    folder = student_folder(built, str(tmp_path / "student"), SOLUTIONS)
    nb, error = execute(folder, name, monkeypatch)
    assert error is None, str(error)[-3000:]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot"
    texts = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "All tests passed" in texts or "passed" in texts  # the grader.check(...) cells


@pytest.mark.parametrize("name", NAMES)
def test_against_the_stubs_the_first_failure_is_the_stubs_message(built, name, tmp_path, monkeypatch):
    folder = student_folder(built, str(tmp_path / "student"))
    nb, error = execute(folder, name, monkeypatch)
    assert error is not None, "the notebook ran to the end on the stubs"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors, "no error output"
    trace = "\n".join(errors[0].get("traceback", []))
    assert "not implemented yet" in trace, trace[-2000:]
    assert len(trace.splitlines()) <= 3, "a wall of traceback:\n" + trace[-2000:]


def test_written_answers_export_to_pdf_offline(built, tmp_path):
    folder = student_folder(built, str(tmp_path / "student"))
    name = NAMES[0]
    r = subprocess.run([sys.executable, "export_answers.py", name + ".ipynb", "-o", "answers.pdf"], cwd=folder,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(folder, "answers.pdf"), "rb") as f:
        assert f.read(5) == b"%PDF-"


def test_the_student_zip_carries_the_handout_and_the_notebooks(built, monkeypatch):
    monkeypatch.setattr(release, "BUILT_HANDOUTS", built["out"])  # absolute: os.path.join keeps it
    files = release.contents()
    for name in NAMES:
        assert name + ".ipynb" in files
    assert "notebook_checks.py" in files and "export_answers.py" in files
    if os.path.exists(os.path.join(built["out"], "writeup.html")):
        assert "writeup.html" in files and "writeup.pdf" in files
