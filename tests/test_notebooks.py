"""The notebooks, as students get them: otter-grader builds the student versions; each runs end to
end in a student's folder against the reference solutions (HANDOUT_FAST=1: smaller training runs)
and reaches the results it states; against the stubs the first failing cell shows the stub's
message in one line; notebook 01 runs section by section with rnn_layers.py alone; a failing
grader.check shows the checker's report only; the first cell names missing packages and the one
install command (requirements.txt); the written answers export to PDF offline; the student zip
carries them. The same notebooks serve the NumPy track (course.toml's track = "numpy"): built for it,
only track.py differs; through track.load each runs end to end against the NumPy solutions, and
against the NumPy stubs the first failure is the stub's message; track.load's conversions are
unit-tested on their own.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile

import nbformat
import numpy as np
import pytest
import torch
from helpers import NP_SOLUTIONS, ROOT, SOLUTIONS
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.verbs import release

sys.path.insert(0, os.path.join(ROOT, "handouts"))
import build_notebooks  # noqa: E402

NAMES = [os.path.splitext(os.path.basename(p))[0] for p in build_notebooks.sources()]
TIMEOUT = 240  # seconds for one cell


def build_all(top, track, writeup=False):
    """The student notebooks built for `track` (and the write-up, if asked) and an unpacked student release
    made with a course.toml that names that track."""
    out, work = str(top / "handouts"), str(top / "otter")
    build_notebooks.build(out, work, track=track)
    script = os.path.join(ROOT, "handouts", "build.py")
    if writeup and os.path.exists(script):
        r = subprocess.run([sys.executable, script, "--out", out], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    with open(os.path.join(ROOT, "course.toml"), encoding="utf-8") as f:
        toml = re.sub(r"^track\s*=.*\n", "", f.read(), flags=re.M)  # top-level keys come before any [section]
    course = top / "course.toml"
    course.write_text('track = "%s"\n' % track + toml, encoding="utf-8")
    zip_path = str(top / "student.zip")
    release.build(zip_path, config_path=str(course))
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(str(top / "release"))
    return {"out": out, "work": work, "release": os.path.join(str(top / "release"), release.TOP), "track": track}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The built handouts (write-up and student notebooks) and an unpacked student release: the PyTorch track."""
    return build_all(tmp_path_factory.mktemp("notebooks"), "torch", writeup=True)


@pytest.fixture(scope="module")
def built_numpy(tmp_path_factory):
    """The student notebooks and the student release of the NumPy track (course.toml: track = "numpy")."""
    return build_all(tmp_path_factory.mktemp("notebooks_numpy"), "numpy")


def student_folder(built, dst, code=None, files=None):
    """A student's folder: the release (stubs, check.py), the built handouts, and `code`'s .py files
    (only those named in `files`, when given; the stubs stay for the others)."""
    shutil.copytree(built["release"], dst)
    shutil.copytree(built["out"], dst, dirs_exist_ok=True)
    if code:
        for name in os.listdir(code):
            if name.endswith(".py") and (files is None or name in files):
                shutil.copy(os.path.join(code, name), dst)
    return dst


def execute(folder, name, monkeypatch, allow_errors=False):
    """Run a notebook as Run All does (or, allow_errors: every cell, as a student running it cell
    by cell past a failing one); returns it with its outputs, and the error that stopped it."""
    monkeypatch.setenv("HANDOUT_FAST", "1")
    monkeypatch.setenv("RNN_ASSIGNMENT_DIR", folder)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(os.path.join(folder, name + ".ipynb"), as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": folder}})
    try:
        client.execute()
    except CellExecutionError as e:
        return nb, e
    return nb, None


def code_cells_by_section(nb):
    """[(section, cell)] for every code cell: section is the number of the last "## N." heading
    above it (0 before the first)."""
    out, section = [], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^## (\d+)\.", cell.source, re.M)
            section = int(m.group(1)) if m else section
        elif cell.cell_type == "code":
            out.append((section, cell))
    return out


def errors_of(cell):
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def shown_text(cell):
    """What a cell shows: its printed text and its results' text/plain and text/html."""
    parts = []
    for o in cell.get("outputs", []):
        parts.append(str(o.get("text", "")))
        data = o.get("data", {})
        parts += [str(data.get("text/plain", "")), str(data.get("text/html", ""))]
    return "\n".join(parts)


# what otter wraps around a failing test when it shows the test itself: never shown to students
OTTER_FRAMING = ("Trying:", "Expecting nothing", "Failed example", "Test case failed", "Error at line",
                 "PublicChecksFailed", "<BLANKLINE>")


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
    runs_to_its_results(built, SOLUTIONS, name, tmp_path, monkeypatch)


def runs_to_its_results(built, solutions, name, tmp_path, monkeypatch):
    folder = student_folder(built, str(tmp_path / "student"), solutions)
    nb, error = execute(folder, name, monkeypatch)
    assert error is None, str(error)[-3000:]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot"
    texts = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "All tests passed" in texts or "passed" in texts  # the grader.check(...) cells


@pytest.mark.parametrize("name", NAMES)
def test_against_the_stubs_the_first_failure_is_the_stubs_message(built, name, tmp_path, monkeypatch):
    first_failure_is_the_stubs_message(built, name, tmp_path, monkeypatch)


def first_failure_is_the_stubs_message(built, name, tmp_path, monkeypatch):
    folder = student_folder(built, str(tmp_path / "student"))
    nb, error = execute(folder, name, monkeypatch)
    assert error is not None, "the notebook ran to the end on the stubs"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors, "no error output"
    trace = "\n".join(errors[0].get("traceback", []))
    assert "not implemented yet" in trace, trace[-2000:]
    assert len(trace.splitlines()) <= 3, "a wall of traceback:\n" + trace[-2000:]
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(") and c.outputs]
    assert checks, "no grader.check cell ran before the first failure"
    for cell in checks:  # each failed: the checker's report, and nothing of otter's framing
        text = shown_text(cell)
        assert "not implemented yet" in text and "score" in text, text[-2000:]
        assert not [f for f in OTTER_FRAMING if f in text], text[-2000:]


# Notebook 01 with rnn_layers.py written and the other files still stubs: which functions the later
# sections need that rnn_layers.py does not hold, and the error the results cell ends on.
UNFINISHED = {"lstm_step_forward", "lstm_step_backward", "clip_grad_norm"}


def test_notebook_01_runs_section_by_section_with_only_rnn_layers_written(built, tmp_path, monkeypatch):
    folder = student_folder(built, str(tmp_path / "student"), SOLUTIONS, files={"rnn_layers.py"})
    nb, _ = execute(folder, "01_rnn_gradients", monkeypatch, allow_errors=True)
    cells = code_cells_by_section(nb)
    failed = [(section, cell, errors_of(cell)[0]) for section, cell in cells if errors_of(cell)]
    for section, cell, error in failed:
        where = "section %d, cell:\n%s\n" % (section, cell.source[:300])
        assert error["ename"] != "NameError", where + error["evalue"]  # a name a failed cell left undefined
        if error["ename"] == "ResultsMissing":  # the results cell: it names what is missing, and where
            assert cell is cells[-1][1], where
            for missing in ("section 4", "section 5, LSTM", "section 6, clipping"):
                assert missing in error["evalue"], error["evalue"]
            continue
        # otherwise: a stub's one-line NotImplementedError, in a cell that calls that function itself
        assert error["ename"] == "NotImplementedError", where + "\n".join(error.get("traceback", []))[-2000:]
        function = error["evalue"].split(":")[0]
        assert function in UNFINISHED and function in cell.source, where + error["evalue"]
        assert len(error["traceback"]) == 1, error["traceback"]
    sections = {section for section, _, _ in failed}
    assert sections == {4, 5, 6, 7}, sections  # 1-3 (the RNN, the bidirectional RNN) ran whole
    # every cell that calls only what rnn_layers.py holds ran: each section's RNN part included
    for section, cell in cells[:-1]:
        if not any(name in cell.source for name in ("lstm_", "clip_grad_norm")):
            assert not errors_of(cell), "section %d:\n%s\n%s" % (section, cell.source[:300], errors_of(cell))
    text = "\n".join(shown_text(cell) for _, cell in cells)
    for result in ("vanilla RNN: orders of magnitude lost", "scale 4: orders of magnitude gained",
                   "largest gradient-check error, bidirectional RNN"):
        assert result in text, result  # the results of the RNN's sections are computed and checked
    assert any("image/png" in o.get("data", {}) for _, c in cells for o in c.get("outputs", []))
    checks = {re.search(r'grader\.check\("(\w+)"\)', c.source).group(1): shown_text(c)
              for _, c in cells if c.source.startswith("grader.check(")}
    assert set(checks) == {"rnn_step", "rnn_sequence", "birnn", "lstm_step", "clip_grad_norm"}, checks
    for question in ("rnn_step", "rnn_sequence", "birnn"):
        assert "passed" in checks[question], checks[question]
    for question in ("lstm_step", "clip_grad_norm"):  # the checker's report, alone
        report = checks[question]
        assert "not implemented yet" in report and "first failing check" in report, report
        assert not [f for f in OTTER_FRAMING if f in report], report


# --------------------------------------------------------------------------- the NumPy track
STUDENT_MODULES = ("rnn_layers", "lstm_layers", "tbptt", "attention", "gradient_check")


def test_the_numpy_track_gets_the_same_notebooks_and_its_own_track_py(built, built_numpy):
    imports = re.compile(r"^\s*(from|import)\s+(%s)\b" % "|".join(STUDENT_MODULES), re.M)
    for name in NAMES:
        cells = [[c.source for c in nbformat.read(os.path.join(b["out"], name + ".ipynb"), as_version=4).cells]
                 for b in (built, built_numpy)]
        assert cells[0] == cells[1], name  # one set of notebooks for both tracks
        body = "\n".join(cells[0])
        assert "from track import load" in body and not imports.search(body), name  # every function through load
    sources = {}
    for b in (built, built_numpy):
        with open(os.path.join(b["out"], "track.py"), encoding="utf-8") as f:
            sources[b["track"]] = f.read()
    assert len(re.findall(r'^TRACK = "numpy"', sources["numpy"], re.M)) == 1
    assert sources["torch"].replace('TRACK = "torch"', 'TRACK = "numpy"') == sources["numpy"]
    with open(os.path.join(built_numpy["release"], "rnn_layers.py"), encoding="utf-8") as f:
        assert "import numpy as np" in f.read()  # the release of the NumPy track ships its stubs


@pytest.mark.parametrize("name", NAMES)
def test_on_the_numpy_track_the_notebook_runs_against_its_solutions(built_numpy, name, tmp_path, monkeypatch):
    runs_to_its_results(built_numpy, NP_SOLUTIONS, name, tmp_path, monkeypatch)


def test_on_the_numpy_track_the_first_failure_is_the_stubs_message(built_numpy, tmp_path, monkeypatch):
    first_failure_is_the_stubs_message(built_numpy, NAMES[0], tmp_path, monkeypatch)


@pytest.fixture
def track_module(monkeypatch, tmp_path):
    """handouts/student/track.py with TRACK = "numpy", loading from the NumPy solutions and tmp_path (the
    student modules imported meanwhile are put back as they were afterwards)."""
    saved = {n: sys.modules.pop(n) for n in STUDENT_MODULES if n in sys.modules}
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(NP_SOLUTIONS)
    spec = importlib.util.spec_from_file_location("track_under_test", build_notebooks.TRACK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TRACK == "torch"  # what the source says; the build sets the course's
    module.TRACK = "numpy"
    yield module
    for n in STUDENT_MODULES + ("track_fake_layers",):
        sys.modules.pop(n, None)
    sys.modules.update(saved)


def test_track_load_converts_at_the_boundary(track_module, tmp_path):
    track = track_module
    rnn_layers = track.load("rnn_layers")
    raw = sys.modules["rnn_layers"]
    assert "numpy" in raw.__file__.replace(os.sep, "/").split("/")  # the NumPy solutions, not torch's
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):  # dtype kept, both ways
        x, h0 = torch.randn(2, 3, 4, generator=g, dtype=dtype), torch.randn(2, 5, generator=g, dtype=dtype)
        Wx, Wh = torch.randn(4, 5, generator=g, dtype=dtype), torch.randn(5, 5, generator=g, dtype=dtype)
        b = torch.randn(5, generator=g, dtype=dtype)
        h, cache = rnn_layers.rnn_forward(x, h0, Wx, Wh, b)
        assert isinstance(h, torch.Tensor) and h.dtype == dtype and h.shape == (2, 3, 5)
        # the cache comes back as tensors and goes back to arrays: the same gradients as NumPy's own call
        assert isinstance(cache, list) and all(isinstance(t, torch.Tensor) for t in cache[0])
        dh = torch.randn(2, 3, 5, generator=g, dtype=dtype)
        grads = rnn_layers.rnn_backward(dh, cache)
        expected = raw.rnn_backward(dh.numpy(), raw.rnn_forward(x.numpy(), h0.numpy(), Wx.numpy(), Wh.numpy(),
                                                                 b.numpy())[1])
        assert isinstance(grads, tuple) and len(grads) == 5
        for got, want in zip(grads, expected):
            assert isinstance(got, torch.Tensor) and got.dtype == dtype
            np.testing.assert_array_equal(got.numpy(), want)
    # a NumPy scalar loss: a 0-dim tensor of its dtype; int64 and bool arguments arrive as arrays
    scores = torch.randn(2, 3, 6, generator=g, dtype=torch.float32)
    loss, dscores = rnn_layers.temporal_softmax_loss(scores, torch.zeros(2, 3, dtype=torch.long),
                                                     torch.ones(2, 3, dtype=torch.bool))
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == torch.float32
    # negative strides (np.flip in birnn_forward) come back as tensors too
    h2, _ = rnn_layers.birnn_forward(x, h0, h0, Wx, Wh, b, Wx, Wh, b)
    assert isinstance(h2, torch.Tensor) and h2.shape == (2, 3, 10)
    # a gradient check: the callback gets tensors, and the in-place perturbation reaches the caller's tensor
    gradient_check = track.load("gradient_check")
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    before = w.clone()
    seen = []

    def f(v):  # reads the caller's w, not its argument: only a shared perturbation moves it
        seen.append(isinstance(v, torch.Tensor) and v.data_ptr() == w.data_ptr())
        return (w * w).sum()

    numerical = gradient_check.eval_numerical_gradient(f, w)
    assert isinstance(numerical, torch.Tensor) and numerical.dtype == torch.float64 and all(seen)
    assert torch.allclose(numerical, 2 * w, atol=1e-6) and torch.equal(w, before)  # put back afterwards
    error = gradient_check.rel_error(numerical, 2 * w)  # a Python float: a 0-dim float64 tensor
    assert isinstance(error, torch.Tensor) and error.dim() == 0 and error.dtype == torch.float64
    assert "%.1e" % error and float(error) < 1e-6
    # a module of one's own: a Python float, nested results, non-functions and a stub's error
    (tmp_path / "track_fake_layers.py").write_text(
        "import numpy as np\nSCALE = 2\n\n"
        "def loss(x):\n    return float(x.sum())\n\n"
        "def nested(d):\n    return {'a': [d['a'] * SCALE, (np.flip(d['a'], 0), 1, 'text')], 'b': np.int64(3)}\n\n"
        "def kinds(x, y, f):\n    return type(x).__name__, type(y).__name__, float(f(x))\n\n"
        "def _private(x):\n    return x\n\n"
        "def stub(x):\n    raise NotImplementedError('stub: not implemented yet')\n")
    fake = track.load("track_fake_layers")
    t = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    out = fake.loss(t)
    assert isinstance(out, torch.Tensor) and out.dim() == 0 and float(out) == 15.0
    out = fake.nested({"a": t})
    assert torch.equal(out["a"][0], 2 * t) and torch.equal(out["a"][1][0], t.flip(0))
    assert out["a"][1][1:] == (1, "text") and isinstance(out["b"], torch.Tensor) and int(out["b"]) == 3
    assert fake.kinds(t, 2.5, lambda v: v.sum()) == ("ndarray", "float", 15.0)  # a tensor callback, in NumPy
    assert fake.SCALE == 2 and fake._private(t) is t and fake.loss.__wrapped__ is sys.modules["track_fake_layers"].loss
    with pytest.raises(NotImplementedError, match="^stub: not implemented yet$"):
        fake.stub(t)
    track.TRACK = "torch"
    assert track.load("rnn_layers") is raw  # the PyTorch track: the module itself


def test_the_build_sets_the_track_from_course_toml_or_the_option(tmp_path, monkeypatch):
    course = tmp_path / "course.toml"
    course.write_text('track = "numpy"\n[grading]\ncuda = false\n')
    assert build_notebooks.course_track(str(course)) == "numpy"
    assert build_notebooks.course_track(str(tmp_path / "missing.toml")) == "torch"
    assert 'TRACK = "numpy"' in build_notebooks.track_source("numpy")
    with pytest.raises(build_notebooks.BuildError):
        build_notebooks.track_source("jax")
    calls = []
    monkeypatch.setattr(build_notebooks, "build", lambda out, work, track=None: calls.append(track) or ["x"])
    monkeypatch.setattr(build_notebooks, "course_track", lambda path=None: "numpy")
    assert build_notebooks.main(["--out", str(tmp_path / "o")]) == 0  # python -m autograder handouts: course.toml's
    assert build_notebooks.main(["--out", str(tmp_path / "o"), "--track", "torch"]) == 0
    assert calls == ["numpy", "torch"]


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
    assert "notebook_checks.py" in files and "export_answers.py" in files and "track.py" in files
    assert "requirements.txt" in files
    if os.path.exists(os.path.join(built["out"], "writeup.html")):
        assert "writeup.html" in files and "writeup.pdf" in files


# --------------------------------------------------------------------------- what students install
KIT_REQUIREMENTS = [os.path.join(ROOT, "requirements", n) for n in ("grader.txt", "handouts.txt")]
NOT_IN_KIT = {"jupyter"}  # the kit runs notebooks with nbclient and never opens Jupyter itself


def test_the_student_requirements_pin_what_the_kit_tests_with():
    from packaging.requirements import Requirement

    kit = {}
    for path in KIT_REQUIREMENTS:
        for line in open(path, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                req = Requirement(line)
                kit.setdefault(req.name.lower().replace("_", "-"), []).append(req)
    student = [Requirement(line) for line in (raw.split("#", 1)[0].strip()
                                              for raw in open(build_notebooks.REQUIREMENTS, encoding="utf-8")) if line]
    names = {r.name.lower().replace("_", "-") for r in student}
    assert names == {"torch", "numpy", "matplotlib", "jupyter", "otter-grader", "nbformat", "pypandoc-binary", "typst"}, names
    assert set(build_notebooks.requirement_names()) <= set(build_notebooks.PACKAGES)  # the first cell knows each
    for req in student:
        name = req.name.lower().replace("_", "-")
        assert "+" not in str(req.specifier), req  # no local build (+cu130, +cpu) pinned
        if name == "torch":  # any build, the kit's version or newer: a torch already installed is kept
            kit_torch = [str(s.version) for r in kit["torch"] for s in r.specifier]
            assert not req.marker and all(req.specifier.contains(v) for v in kit_torch), (req, kit_torch)
            assert not any(s.operator == "==" for s in req.specifier), req
        elif name in NOT_IN_KIT:
            assert req.specifier, req
        else:  # the same pin as the kit's, for each Python it pins for
            assert str(req) in {str(k) for k in kit[name]}, (str(req), [str(k) for k in kit[name]])
    for version in ("3.10", "3.11", "3.12", "3.13"):  # exactly one line of each package on each Python
        env = {"python_version": version, "python_full_version": version + ".0"}
        live = [r.name for r in student if r.marker is None or r.marker.evaluate(env)]
        assert sorted(live) == sorted(set(live)) and len(set(live)) == len(names), (version, live)


def run_first_cell(tmp_path, present):
    """Run the first cell of notebook 01 in a bare Python that finds only the modules `present`
    (empty stand-ins), as plain Python; returns the finished process."""
    nb = nbformat.read(os.path.join(tmp_path / "built", "01_rnn_gradients.ipynb"), as_version=4)
    fake = tmp_path / ("site_" + "_".join(present))  # one folder per call
    fake.mkdir()
    for module in present:
        (fake / (module + ".py")).write_text("class Notebook:\n    def __init__(self, path):\n        pass\n\n"
                                             "    def check(self, question):\n        print('checked', question)\n")
    script = tmp_path / "cell.py"
    script.write_text(nb.cells[0].source + '\ngrader.check("rnn_step")\nprint("the cell ran to its end")\n')
    return subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path[:] = [%r, %r]; exec(open(%r).read())"
                           % (str(fake), os.path.dirname(os.__file__), str(script))],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=60)


@pytest.fixture
def first_cell_nb(built, tmp_path):
    shutil.copytree(built["out"], tmp_path / "built")
    return tmp_path


def test_the_first_cell_names_what_is_missing_and_the_one_install_command(first_cell_nb):
    nb = nbformat.read(os.path.join(first_cell_nb / "built", "01_rnn_gradients.ipynb"), as_version=4)
    for name in NAMES:  # every notebook starts with it, otter started for its own file
        first = nbformat.read(os.path.join(first_cell_nb / "built", name + ".ipynb"), as_version=4).cells[0]
        assert first.cell_type == "code" and "pip install -r requirements.txt" in first.source
        assert "otter.Notebook(%r)" % (name + ".ipynb") in first.source
    assert nb.cells[0].source == build_notebooks.first_cell("01_rnn_gradients")
    # everything there: silent, and otter is started
    r = run_first_cell(first_cell_nb, ["torch", "numpy", "matplotlib", "otter", "nbformat", "pypandoc", "typst"])
    assert r.returncode == 0 and r.stdout.strip().endswith("the cell ran to its end"), r.stdout + r.stderr
    assert "Missing" not in r.stdout, r.stdout
    # only the export tools and otter missing: said, named, and the notebook goes on
    r = run_first_cell(first_cell_nb, ["torch", "numpy", "matplotlib"])
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("otter-grader", "nbformat", "pypandoc_binary", "typst", "pip install -r requirements.txt"):
        assert name in r.stdout, (name, r.stdout)
    assert "rnn_step: not checked (otter-grader is missing)" in r.stdout, r.stdout
    assert "the cell ran to its end" in r.stdout
    # torch missing: the cell stops, with the package and the command in its one-line error
    r = run_first_cell(first_cell_nb, ["numpy", "matplotlib", "otter", "nbformat", "pypandoc", "typst"])
    assert r.returncode != 0 and "the cell ran to its end" not in r.stdout
    assert "MissingPackages: this notebook cannot run without torch: pip install -r requirements.txt" in r.stderr, r.stderr
    assert "Missing: torch" in r.stdout, r.stdout


def test_a_failing_check_shows_only_the_checkers_report():
    """notebook_checks.require raises the report; the notebook shows it without otter's framing."""
    sys.path.insert(0, os.path.join(ROOT, "handouts", "student"))
    try:
        import notebook_checks
    finally:
        sys.path.pop(0)
    from otter.test_files import ExceptionTestFile

    report = "function   score  first failing check\nrnn_step_forward  0/2  raised NotImplementedError"
    source = ("from otter.test_files import test_case\nOK_FORMAT = False\nname = 'q'\npoints = 0\n\n"
              "@test_case(points=None, hidden=False)\ndef test_public_checks():\n"
              "    import notebook_checks\n    raise notebook_checks.PublicChecksFailed(%r)\n" % report)
    result = ExceptionTestFile.from_string(source)
    result.run({})
    assert not result.passed_all and "Error at line" in result.summary()  # otter's own framing ...
    assert notebook_checks.failed_reports(result) == [report]  # ... which the notebook leaves out
