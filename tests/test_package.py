"""Gradescope's autograder zip, end to end.

Without root: the zip's members (scripts at the root with their exec bit, nothing private,
a byte-identical rebuild) and the results.json validator (tests/gradescope_schema.py).
As root, as Gradescope runs it: the zip unpacked into a temporary root laid out like
/autograder (source/, submission/, results/, submission_metadata.json), setup.sh run once for
the module (a fresh venv with torch from this machine's wheels: about half a minute), then
run_autograder on the reference solutions, the stubs, a broken submission and one a folder
down, a grader failure and a run that writes no results.json. Every results.json is checked
against Gradescope's specification.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import zipfile

import pytest
import torch
from gradescope_schema import check, check_file, problems
from helpers import ASSIGNMENT, ROOT, copy_solutions, make_variant, write_submission

from autograder.engine import archive

from autograder.verbs import package as packaging, grade as pipeline

from autograder import registry

SCRIPTS = ("setup.sh", "run_autograder")
SETUP_LIMIT = 180.0  # seconds: Gradescope's image build must stay quick
METADATA = {  # a small, realistic /autograder/submission_metadata.json
    "id": 123456,
    "created_at": "2026-11-20T14:22:32.365935-08:00",
    "assignment": {"due_date": "2026-11-27T23:00:00.000000-08:00", "group_size": None, "group_submission": False,
                   "id": 25828, "course_id": 1234, "late_due_date": None,
                   "release_date": "2026-11-13T00:00:00.000000-08:00", "title": "Recurrent networks",
                   "total_points": "%.1f" % sum(fn.points for fn in registry.FUNCTIONS)},
    "submission_method": "upload",
    "users": [{"email": "student@example.com", "id": 1234, "name": "Student User"}],
    "previous_submissions": [{"submission_time": "2026-11-19T10:01:02.000000-08:00", "score": 0.0,
                              "autograder_error": False, "results": {"score": 0.0, "tests": []}}],
}


def kit_copy(dst, drop=()):
    """The files the zip is built from, copied to `dst` (minus `drop`), plus junk it must skip."""
    for rel in ("autograder", "solutions", "requirements", "tools", "gradescope", "pyproject.toml",
                "course.toml", "instructor_tests"):
        src = os.path.join(ROOT, rel)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, rel), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif os.path.exists(src):
            shutil.copy(src, os.path.join(dst, rel))
    for rel in drop:
        os.unlink(os.path.join(dst, rel))
    junk = {"autograder/__pycache__/cli.cpython-310.pyc": "", "autograder/.cli.py.swp": "",
            "solutions/torch/rnn_layers.py~": "", "tests/test_x.py": "", "assignment/torch/rnn_layers.py": "",
            ".git/HEAD": "ref: refs/heads/main\n", "dist/autograder.zip": "", ".venv/pyvenv.cfg": ""}
    for rel, text in junk.items():
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        with open(os.path.join(dst, rel), "w") as f:
            f.write(text)
    os.chmod(os.path.join(dst, "autograder"), 0o750)  # as after a local grade as root
    os.chmod(os.path.join(dst, "solutions", "torch", "rnn_layers.py"), 0o600)
    return dst


# --------------------------------------------------------------------------- the zip (no root)
def test_zip_has_the_scripts_at_its_root_and_nothing_private(tmp_path):
    out = str(tmp_path / "autograder.zip")
    packed = packaging.build(out)
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) == [m.arcname for m in packed]
    for script in SCRIPTS:
        info = next(i for i in infos if i.filename == script)
        mode = info.external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, "%s: mode %o" % (script, mode)
    for name in ("autograder/registry.py", "autograder/__main__.py", "autograder/verbs/package.py", "autograder/engine/worker.py",
                 "requirements/grader.txt", "solutions/torch/rnn_layers.py", "solutions/numpy/rnn_layers.py"):
        assert name in names
    for name in names:
        top = name.split("/")[0]
        assert top not in ("tests", "assignment", ".git", "dist", ".venv", "gradescope"), name
        assert "__pycache__" not in name.split("/") and not name.endswith((".pyc", ".pyo")), name
        assert "/" in name or name in SCRIPTS + ("pyproject.toml", "course.toml"), name
    assert ("course.toml" in names) == os.path.isfile(os.path.join(ROOT, "course.toml"))
    assert any(n.startswith("instructor_tests/") for n in names) == os.path.isdir(os.path.join(ROOT, "instructor_tests"))
    for info in infos:
        assert info.date_time == archive.FIXED_TIME and info.create_system == 3
        assert info.external_attr >> 16 & 0o777 == (0o755 if info.filename in SCRIPTS else 0o644), info.filename
    with open(os.path.join(ROOT, "requirements", "grader.txt"), "rb") as f, zipfile.ZipFile(out) as zf:
        assert zf.read("requirements/grader.txt") == f.read()  # the very pins `make setup` uses


def test_build_is_deterministic_and_skips_caches_junk_and_modes(tmp_path):
    first, second = str(tmp_path / "a.zip"), str(tmp_path / "b.zip")
    packaging.build(first)
    packaging.build(second, root=kit_copy(str(tmp_path / "kit")))
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()
    listing = packaging.listing(packaging.members(), first)
    assert "setup.sh  (executable)" in listing and "autograder/registry.py" in listing and first in listing


def test_a_missing_required_file_stops_the_build(tmp_path):
    kit = kit_copy(str(tmp_path / "kit"), drop=["requirements/grader.txt"])
    with pytest.raises(packaging.PackagingError, match="requirements/grader.txt"):
        packaging.build(str(tmp_path / "autograder.zip"), root=kit)
    assert not os.path.exists(tmp_path / "autograder.zip")


def test_a_bad_course_toml_stops_the_build(tmp_path):
    kit = kit_copy(str(tmp_path / "kit"))
    with open(os.path.join(kit, "course.toml"), "w") as f:
        f.write("[limits]\ncall_timeout = 10\ncall_timout = 5\n")
    with pytest.raises(packaging.PackagingError, match="call_timout"):
        packaging.build(str(tmp_path / "autograder.zip"), root=kit)
    assert not os.path.exists(tmp_path / "autograder.zip")


# --------------------------------------------------------------------------- the validator
GOOD = {"score": 3.0, "execution_time": 1.5, "output": "Score 3 / 4.", "output_format": "simple_format",
        "visibility": "visible", "stdout_visibility": "hidden", "extra_data": {},
        "tests": [{"name": "f", "score": 2.0, "max_score": 2.0, "output": "", "tags": ["f"], "visibility": "visible",
                   "status": "passed", "number": "1.1", "name_format": "text", "output_format": "md"},
                  {"name": "g", "score": 1.0, "max_score": 2.0, "visibility": "after_published", "extra_data": {}}],
        "leaderboard": [{"name": "Time", "value": 15.1, "order": "asc"}]}


def edited(edit):
    doc = json.loads(json.dumps(GOOD))
    edit(doc)
    return doc


@pytest.mark.parametrize("edit,words", [
    (lambda d: d.update(visiblity="visible"), "unknown key 'visiblity'"),
    (lambda d: d["tests"][0].update(max_points=2), "unknown key 'max_points'"),
    (lambda d: d.update(score="3"), "'score' must be a finite number"),
    (lambda d: d.update(score=True), "'score' must be a finite number"),
    (lambda d: d.update(score=float("nan")), "'score' must be a finite number"),
    (lambda d: d.update(score=4.0), "not the sum of the tests' scores"),
    (lambda d: d.update(output=["a"]), "'output' must be a string"),
    (lambda d: d.update(output_format="markdown"), "'output_format' must be one of"),
    (lambda d: d.update(stdout_visibility="public"), "'stdout_visibility' must be one of"),
    (lambda d: d.update(extra_data=[]), "'extra_data' must be an object"),
    (lambda d: d.update(tests={}), "'tests' must be a list"),
    (lambda d: d["tests"][0].update(tags="f"), "'tags' must be a list of strings"),
    (lambda d: d["tests"][0].update(tags=[1]), "'tags' must be a list of strings"),
    (lambda d: d["tests"][0].update(status="ok"), "'status' must be one of passed, failed"),
    (lambda d: d["tests"][0].update(visibility="after_due"), "'visibility' must be one of"),
    (lambda d: d["tests"][1].update(name_format="rich"), "'name_format' must be one of"),
    (lambda d: d["tests"][1].update(max_score=None), "'max_score' must be a finite number"),
    (lambda d: d["tests"].append("h"), "tests[2] must be an object"),
    (lambda d: (d.pop("score"), d["tests"][1].pop("score")), "tests[1] (g) lacks 'score'"),
    (lambda d: (d.pop("score"), d.pop("tests")), "needs a top-level 'score' or a 'tests' list"),
    (lambda d: d["leaderboard"][0].pop("value"), "leaderboard[0] lacks 'value'"),
    (lambda d: d["leaderboard"][0].update(order="up"), "'order' must be one of asc, desc"),
    (lambda d: d.update(output="x" * 1000000), "under 1 MB"),
])
def test_validator_rejects_bad_documents(edit, words):
    assert problems(GOOD) == []
    found = problems(edited(edit))
    assert any(words in p for p in found), found
    with pytest.raises(AssertionError, match="invalid results.json"):
        check(edited(edit))


def test_validator_accepts_the_kits_failure_results():
    check(pipeline.failure_results("Traceback (most recent call last):\nRuntimeError: boom\n"))
    assert problems([]) == ["results.json must be an object, got list"]


# --------------------------------------------------------------------------- end to end (root)
@pytest.fixture(scope="module")
def gradescope():
    """A temporary /autograder: the zip unpacked into source/, setup.sh run as Gradescope does.

    The folder is made with tempfile under /tmp, not pytest's tmp_path: pytest's folders are
    private (0700) and the sandbox user must traverse down to venv/bin/python.
    """
    if os.geteuid() != 0:
        pytest.skip("setup.sh and run_autograder run as root on Gradescope (and the sandbox user needs root)")
    top = tempfile.mkdtemp(prefix="ag-gradescope-")
    try:
        os.chmod(top, 0o755)  # as /autograder on Gradescope: others may traverse
        root = os.path.join(top, "autograder")
        source = os.path.join(root, "source")
        for folder in (source, os.path.join(root, "submission"), os.path.join(root, "results")):
            os.makedirs(folder)
        os.chmod(root, 0o755)
        zip_path = os.path.join(top, "autograder.zip")
        packaging.build(zip_path)
        with zipfile.ZipFile(zip_path) as zf:  # unpacked as unzip does: the modes the zip carries
            for info in zf.infolist():
                zf.extract(info, source)
                os.chmod(os.path.join(source, info.filename), info.external_attr >> 16 & 0o777)
        with open(os.path.join(root, "submission_metadata.json"), "w") as f:
            json.dump(METADATA, f, indent=2)
        shutil.copy(os.path.join(source, "run_autograder"), root)  # Gradescope copies it there too
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update(AUTOGRADER_ROOT=root, AUTOGRADER_TORCH_INDEX="")  # pip: this machine's own wheels
        start = time.monotonic()
        r = subprocess.run([os.path.join(source, "setup.sh")], cwd=source, env=env, capture_output=True,
                           text=True, timeout=600)
        seconds = time.monotonic() - start
        assert r.returncode == 0, "setup.sh failed (%d):\n%s\n%s" % (r.returncode, r.stdout[-6000:], r.stderr[-6000:])
        yield {"root": root, "setup": r, "setup_seconds": seconds}
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_autograder(gs, fill, args=None):
    """Fill a fresh submission/ with fill(folder), run run_autograder; (process, results or None)."""
    root = gs["root"]
    sub = os.path.join(root, "submission")
    shutil.rmtree(sub)
    os.makedirs(sub)
    fill(sub)
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOGRADER_ARGS", "VIRTUAL_ENV", "PYTHONPATH")}
    env["AUTOGRADER_ROOT"] = root
    if args:
        env["AUTOGRADER_ARGS"] = args
    r = subprocess.run([os.path.join(root, "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    path = os.path.join(root, "results", "results.json")
    return r, (check_file(path) if os.path.exists(path) else None)


def graded(data):
    """The entry of every graded function in a results.json, by function name (instructor tests and
    the hidden checks' detail entries left out)."""
    names = {fn.name for fn in registry.FUNCTIONS}
    return {t["tags"][0]: t for t in data["tests"]
            if t.get("tags") and t["tags"][0] in names and "hidden-details" not in t["tags"]}


def timed_out_only(data):
    """Whether every entry short of full marks lost only the vectorisation check's share: a loaded machine can
    tip a reference's own timing (speed.py: up to about 5x of the allowed 10x when measured), which
    tests/test_speed.py tests on its own. The end-to-end tests grade once more then, never accept it."""
    short = [t for t in data["tests"] if t.get("score") != t.get("max_score")]
    return bool(short) and all("vectorised" in t.get("output", "") and
                               t["max_score"] - t["score"] <= t["max_score"] * 0.25 for t in short)


def graded_in_full(gs, fill, args=None):
    """run_autograder, then full_marks; graded once more when only a vectorisation check missed (timed_out_only)."""
    r, data = run_autograder(gs, fill, args)
    if data is not None and timed_out_only(data):
        r, data = run_autograder(gs, fill, args)
    full_marks(r, data)
    return r, data


def full_marks(r, data):
    assert r.returncode == 0 and data is not None, r.stdout[-3000:] + r.stderr[-3000:]
    assert set(graded(data)) == {fn.name for fn in registry.FUNCTIONS}
    assert all(t.get("score") == t.get("max_score") for t in data["tests"]), r.stdout[-3000:]
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0


def test_setup_installs_the_pins_quickly(gradescope):
    out = gradescope["setup"].stdout
    assert gradescope["setup_seconds"] < SETUP_LIMIT, "setup.sh took %.0f s" % gradescope["setup_seconds"]
    assert "torch 2.13.0" in out and "%d graded functions" % len(registry.FUNCTIONS) in out, out[-3000:]
    assert "can start" in out and "setup.sh [" in out  # it says what it does
    venv_python = os.path.join(gradescope["root"], "venv", "bin", "python")
    r = subprocess.run([venv_python, "-c", "import numpy, torch; print(torch.__version__)"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("2.13.0"), r.stderr


def test_reference_solutions_get_full_marks(gradescope):
    r, data = graded_in_full(gradescope, copy_solutions)
    assert "wrote" in r.stdout and "total" in r.stdout  # the table goes to the instructors' stdout
    root = gradescope["root"]
    assert os.stat(os.path.join(root, "source", "autograder")).st_mode & 0o007 == 0  # hidden from the sandbox
    assert os.stat(os.path.join(root, "submission_metadata.json")).st_mode & 0o077 == 0


def test_stubs_get_zero_with_each_stubs_message(gradescope):
    def fill(sub):
        for name in os.listdir(ASSIGNMENT):
            if name.endswith(".py"):
                shutil.copy(os.path.join(ASSIGNMENT, name), sub)
    r, data = run_autograder(gradescope, fill)
    assert r.returncode == 0 and data is not None, r.stderr[-3000:]
    assert data["score"] == 0 and set(graded(data)) == {fn.name for fn in registry.FUNCTIONS}
    for name, t in graded(data).items():
        assert "not implemented yet" in t["output"], (name, t["output"])


def test_a_broken_submission_is_graded_with_reasons(gradescope):
    fill = lambda sub: write_submission(sub, {"rnn_layers.py": "import torch\n\ndef rnn_step_forward(x:\n"})  # noqa: E731
    r, data = run_autograder(gradescope, fill)
    assert r.returncode == 0 and data is not None, r.stderr[-3000:]
    assert data["score"] == 0
    for fn in registry.FUNCTIONS:
        words = "syntax error" if fn.file == "rnn_layers" else "was not found"
        assert words in graded(data)[fn.name]["output"], (fn.name, graded(data)[fn.name]["output"])


def test_files_one_folder_down_get_full_marks(gradescope):
    graded_in_full(gradescope, lambda sub: copy_solutions(os.path.join(sub, "hw")))


def test_buggy_and_hostile_code_costs_only_its_functions(gradescope):
    """A wrong tanh' (rnn_step_backward) and an attack in word_embedding_forward that tries to
    overwrite results.json, then kills its worker: exactly those functions (and their callers)
    lose points, and the results stay the grader's."""
    target = os.path.join(gradescope["root"], "results", "results.json")  # where run_autograder writes
    attack = ("    import os\n"
              "    for path in (%r, '/autograder/results/results.json'):\n"
              "        try:\n"
              "            open(path, 'w').write('{\"score\": 1000}')\n"
              "        except OSError:\n"
              "            pass\n"
              "    os._exit(0)\n" % target)
    edits = [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)"),
             ("    # BEGIN SOLUTION\n    out = W[x]", "    # BEGIN SOLUTION\n" + attack + "    out = W[x]")]
    r, data = run_autograder(gradescope, lambda sub: make_variant(sub, "rnn_layers.py", edits))
    assert r.returncode == 0 and data is not None, r.stderr[-3000:]
    lost = {name for name, t in graded(data).items() if t["score"] < t["max_score"]}
    callers = {fn.name for fn in registry.FUNCTIONS if fn.file == "tbptt"} | {"rnn_backward", "birnn_backward"}
    assert {"rnn_step_backward", "word_embedding_forward", "word_embedding_backward"} <= lost, lost
    assert lost <= {"rnn_step_backward", "word_embedding_forward", "word_embedding_backward"} | callers, lost
    assert "1 - next_h" in graded(data)["rnn_step_backward"]["output"]  # the hint of this mistake
    assert "exited with status 0" in graded(data)["word_embedding_forward"]["output"]
    assert data["score"] < 1000


@pytest.mark.skipif(torch.cuda.is_available(), reason="--device cuda must fail to make the grader fail")
def test_a_grader_failure_still_leaves_valid_results(gradescope):
    r, data = run_autograder(gradescope, copy_solutions, args="--device cuda")  # no CUDA: the grader fails
    assert r.returncode == 0 and data is not None, r.stderr[-3000:]
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    assert visible and visible[0]["name"] == "autograder failed" and data["score"] == 0
    assert "exited with status 1" in r.stdout


def test_a_missing_results_json_is_not_hidden(gradescope):
    stale = os.path.join(gradescope["root"], "results", "results.json")
    with open(stale, "w") as f:
        json.dump({"score": 82.0}, f)  # a stale file must not pass for this run's results
    r, data = run_autograder(gradescope, copy_solutions, args="--functions no_such_function")
    assert r.returncode != 0 and data is None
    assert "wrote no" in r.stderr and "no_such_function" in r.stderr


def test_the_numpy_tracks_zip_grades_numpy_code(gradescope, tmp_path):
    """The zip of a course.toml saying track = "numpy" (`package --config`), unpacked in place of the torch
    one (the same files but course.toml; setup.sh's venv is the same): the NumPy reference gets full marks
    with the instructor tests, the NumPy stubs zero with each stub's message, a CS231n-style rnn_layers.py
    holding the LSTM is graded as it is, and the results say that CUDA checks do not apply."""
    from helpers import NP_ASSIGNMENT, NP_SOLUTIONS

    toml = tmp_path / "course.toml"
    with open(os.path.join(ROOT, "course.toml")) as f:
        toml.write_text(f.read().replace('track = "torch"', 'track = "numpy"'))
    zip_path = str(tmp_path / "autograder.zip")
    packaging.build(zip_path, config_path=str(toml))
    torch_zip = str(tmp_path / "torch.zip")
    packaging.build(torch_zip)
    with zipfile.ZipFile(zip_path) as a, zipfile.ZipFile(torch_zip) as b:
        differ = [n for n in a.namelist() if a.read(n) != b.read(n)]
        assert a.namelist() == b.namelist() and differ == ["course.toml"], differ
    root = gradescope["root"]
    source, kept = os.path.join(root, "source"), os.path.join(root, "source-torch")
    os.rename(source, kept)
    try:
        os.makedirs(source)
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                zf.extract(info, source)
                os.chmod(os.path.join(source, info.filename), info.external_attr >> 16 & 0o777)
        r, data = graded_in_full(gradescope, lambda sub: copy_solutions(sub, NP_SOLUTIONS))
        assert "NumPy track: CUDA checks do not apply to the NumPy track" in data["output"], data["output"][:500]
        assert any(t["name"].startswith("tbptt_train: the language model learns") for t in data["tests"])

        r, data = run_autograder(gradescope, lambda sub: copy_solutions(sub, NP_ASSIGNMENT))
        assert r.returncode == 0 and data is not None and data["score"] == 0, r.stderr[-3000:]
        assert all("not implemented yet" in t["output"] for t in graded(data).values())

        def cs231n(sub):
            with open(os.path.join(NP_SOLUTIONS, "lstm_layers.py")) as f:
                lstm = f.read()
            with open(os.path.join(NP_SOLUTIONS, "rnn_layers.py")) as f:
                rnn = f.read()
            with open(os.path.join(sub, "rnn_layers.py"), "w") as f:
                f.write(rnn + "\n\n" + lstm[lstm.index("def sigmoid"):])
            for name in ("tbptt.py", "attention.py"):
                shutil.copy(os.path.join(NP_SOLUTIONS, name), sub)
        r, data = graded_in_full(gradescope, cs231n)
        out = graded(data)["lstm_forward"]["output"].replace("\\_", "_")  # Markdown escapes the underscores
        assert "lstm_forward was found in rnn_layers.py (the submission has no lstm_layers.py)" in out, out[:500]
    finally:
        shutil.rmtree(source, ignore_errors=True)
        os.rename(kept, source)
