"""Stub generation: assignment/<track>/ is a fresh generation of solutions/<track>/ (both tracks), stubs fail
loudly."""
import ast
import importlib.util
import inspect
import os

import pytest
from helpers import ROOT

from autograder import paths, registry

from autograder.verbs import stubs


TRACKS = pytest.mark.parametrize("track", paths.TRACKS)


@TRACKS
def test_committed_assignment_matches_a_fresh_generation(track, tmp_path):
    diffs = stubs.differences(paths.solutions(track), paths.assignment(track), str(tmp_path / "fresh"))
    assert not diffs, "assignment/%s/ drifted from solutions/%s/ (run `make stubs`): %s" % (track, track, diffs)


@TRACKS
def test_assignment_holds_no_solution_code(track):
    for name in os.listdir(paths.assignment(track)):
        with open(os.path.join(paths.assignment(track), name)) as f:
            text = f.read()
        assert "SOLUTION" not in text, name


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@TRACKS
@pytest.mark.parametrize("fn", registry.FUNCTIONS, ids=lambda f: f.name)
def test_each_stub_raises_not_implemented_naming_its_function(fn, track):
    import sys
    folder = paths.assignment(track)
    sys.path.insert(0, folder)
    try:
        mod = _load(os.path.join(folder, fn.file + ".py"), "stub_%s_%s" % (track, fn.file))
    finally:
        sys.path.remove(folder)
        sys.modules.pop("rnn_layers", None)  # tbptt's import of its track's rnn_layers
    func = getattr(mod, fn.name)
    nargs = len([p for p in inspect.signature(func).parameters.values() if p.default is p.empty])
    with pytest.raises(NotImplementedError, match=fn.name):
        func(*([None] * nargs))


@TRACKS
def test_every_registered_function_is_fenced_in_its_solution(track):
    for fn in registry.FUNCTIONS:
        with open(os.path.join(paths.solutions(track), fn.file + ".py")) as f:
            stub = stubs.make_stub(f.read())
        assert 'NotImplementedError("%s:' % fn.name in stub, fn.name


GOOD = "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    y = x + 1\n    # END SOLUTION\n    return y\n"


def test_stub_replaces_the_region_and_keeps_the_rest():
    out = stubs.make_stub(GOOD, "m.py")
    assert out == ("def f(x):\n    '''doc'''\n    raise NotImplementedError(\"f: not implemented yet\")\n"
                   "    # Your code replaces the line above and ends with:\n    # return y\n")


def test_no_statement_follows_a_stub_in_its_function():
    """The closing return after a region (reachable in the solution) would be dead code below the stub:
    it becomes a comment, a multi-line one line by line; code that is not the closing return stays."""
    src = ("def f(x):\n    # BEGIN SOLUTION\n    y = x\n    # END SOLUTION\n\n    return (y,\n            y)\n\n\n"
           "def g(x):\n    # BEGIN SOLUTION\n    y = x\n    # END SOLUTION\n    y = y + 1\n    return y\n")
    out = stubs.make_stub(src, "m.py")
    assert "    # Your code replaces the line above and ends with:\n    # return (y,\n    #         y)\n" in out
    assert "    y = y + 1\n    return y\n" in out  # not right after the region: kept as it is
    for track in paths.TRACKS:
        for name in registry.FILES:  # the real stubs: nothing reachable follows a raise
            with open(os.path.join(paths.assignment(track), name + ".py")) as f:
                tree = ast.parse(f.read())
            for fn in ast.walk(tree):
                if isinstance(fn, ast.FunctionDef) and any(isinstance(n, ast.Raise) for n in fn.body):
                    assert isinstance(fn.body[-1], ast.Raise), (track, name, fn.name)


@pytest.mark.parametrize("text,line,words", [
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n", 3, "nested"),
    ("def f():\n    pass\n    # END SOLUTION\n", 3, "without a matching"),
    ("def f():\n    # BEGIN SOLUTION\n    pass\n", 2, "never closed"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", 1, "outside a function"),
    ("def f():\n    # BEGIN SOLUTON\n    pass\n", 2, "malformed marker"),
])
def test_malformed_markers_stop_generation_with_file_and_line(text, line, words):
    with pytest.raises(stubs.MarkerError) as e:
        stubs.make_stub(text, "broken.py")
    assert "broken.py:%d" % line in str(e.value) and words in str(e.value)


def test_generation_with_a_bad_file_writes_nothing(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.py").write_text(GOOD)
    (src / "b.py").write_text("def g():\n    # BEGIN SOLUTION\n    pass\n")
    with pytest.raises(stubs.MarkerError, match="b.py:2"):
        stubs.generate(str(src), str(dst))
    assert not dst.exists()


def test_make_stubs_cli_check_passes():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "autograder", "stubs", "--check"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
