"""The grader must run on Gradescope's default image: Python 3.10 (Ubuntu 22.04).

Two checks over every Python file that runs on Gradescope's Python or on a student's (the grader
and its engine, which check.py ships to students, the solutions, the stubs, the instructor tests,
the tool that setup.sh runs, and check.py itself):

- the grammar: each file parses with the Python 3.10 grammar (no `except*`, no PEP 695 generics);
- the standard library: vermin (pinned in requirements/dev.txt) finds no module, name, keyword
  argument or syntax that needs Python 3.11+ (tomllib, datetime.UTC, typing.Self, ExceptionGroup,
  asyncio.TaskGroup, itertools.batched, ...). Annotations count as evaluated (--eval-annotations):
  on 3.10 they are, unless a file says `from __future__ import annotations`.

A use that is guarded on purpose passes as vermin allows it: code under `if sys.version_info >=
(3, 11):` is not counted, and a line marked `# novermin` is skipped (for `try: import tomllib`
with `except ImportError: import tomli`). The fixture tests below prove that the check can fail.
"""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = (3, 10)
# What runs on Gradescope's Python (the autograder zip: see autograder/verbs/package.py) or on a
# student's (the stubs, gradient_check.py and the engine copy of check.py).
PATHS = ("autograder", "solutions", "assignment", "instructor_tests", "tools/worker_python_access.py")
VERMIN = ["-t=%d.%d-" % TARGET, "--violations", "--no-tips", "--eval-annotations", "--no-config-file",
          "--no-make-paths-absolute", "-q", "-p=1"]


def python_files(paths=PATHS, root=ROOT):
    for rel in paths:
        path = os.path.join(root, rel)
        if os.path.isfile(path):
            yield path
        for dirpath, dirnames, names in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                if name.endswith(".py"):
                    yield os.path.join(dirpath, name)


def grammar_problems(files):
    """'path: message' for each file that does not parse with the Python 3.10 grammar."""
    out = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        try:
            ast.parse(source, filename=path, feature_version=TARGET)
        except SyntaxError as e:
            out.append("%s:%s: %s (not Python %d.%d grammar)" % (path, e.lineno, e.msg, *TARGET))
    return out


def vermin_problems(files):
    """vermin's report of what in `files` needs a Python newer than 3.10 ('' when nothing does)."""
    try:
        import vermin  # noqa: F401
    except ImportError:
        pytest.fail("vermin is not installed in %s: run make setup (requirements/dev.txt pins it)" % sys.executable)
    proc = subprocess.run([sys.executable, "-c", "import sys; from vermin import main; sys.exit(main())",
                           *VERMIN, *files], capture_output=True, text=True, timeout=300)
    report = (proc.stdout + proc.stderr).strip()
    assert proc.returncode in (0, 1), "vermin failed (exit %d):\n%s" % (proc.returncode, report)
    # Exit 1 with --violations: a file needs more than the target. Exit 0 prints nothing with -q.
    return report if proc.returncode == 1 or report else ""


def problems(files):
    files = list(files)
    out = grammar_problems(files)
    report = vermin_problems(files)
    if report:
        out.append(report)
    return out


def test_the_kit_files_are_found():
    files = list(python_files())
    for rel in ("autograder/engine/runner.py", "autograder/engine/worker.py", "solutions/torch/rnn_layers.py",
                "solutions/numpy/rnn_layers.py", "assignment/torch/rnn_layers.py", "assignment/numpy/rnn_layers.py",
                "tools/worker_python_access.py"):
        assert os.path.join(ROOT, rel) in files, rel


def test_sources_parse_with_the_python_310_grammar():
    assert grammar_problems(python_files()) == []


def test_no_standard_library_newer_than_python_310():
    report = vermin_problems(list(python_files()))
    assert not report, "Python 3.11+ only (Gradescope runs 3.10):\n" + report


def test_check_py_launcher_runs_on_python_310(tmp_path):
    from autograder.verbs import release

    path = tmp_path / "check.py"
    path.write_text(release.LAUNCHER)
    assert problems([str(path)]) == []


NEWER = {
    "tomllib_module.py": "import tomllib\n",
    "datetime_utc.py": "import datetime\nNOW = datetime.datetime.now(datetime.UTC)\n",
    "typing_self.py": "from typing import Self\n\n\nclass A:\n    def copy(self) -> Self:\n        return self\n",
    "self_in_annotation.py": "import typing\n\n\nclass A:\n    def copy(self) -> typing.Self:\n        return self\n",
    "except_star.py": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "exception_group.py": "def f():\n    raise ExceptionGroup('x', [ValueError()])\n",
    "task_group.py": "import asyncio\n\n\nasync def main():\n    async with asyncio.TaskGroup():\n        pass\n",
    "batched.py": "import itertools\n\nPAIRS = list(itertools.batched(range(4), 2))\n",
    "unguarded_try.py": "try:\n    import tomllib\nexcept ImportError:\n    import tomli as tomllib\n",
}

FINE = {
    "py310_syntax.py": ("def f(x: int | None = None) -> list[int]:\n    match x:\n        case None:\n"
                        "            return []\n    return [x]\n"),
    "version_guard.py": ("import sys\n\nif sys.version_info >= (3, 11):\n    import tomllib\nelse:\n"
                         "    import tomli as tomllib\n"),
    "novermin_try.py": "try:\n    import tomllib  # novermin\nexcept ImportError:\n    import tomli as tomllib\n",
    "tomli.py": "import tomli\n",
}


@pytest.mark.parametrize("name", sorted(NEWER))
def test_the_check_flags_python_311_code(tmp_path, name):
    path = tmp_path / name
    path.write_text(NEWER[name])
    found = problems([str(path)])
    assert found and name in "\n".join(found), "%s passed the 3.10 check:\n%s" % (name, NEWER[name])


@pytest.mark.parametrize("name", sorted(FINE))
def test_the_check_passes_python_310_code(tmp_path, name):
    path = tmp_path / name
    path.write_text(FINE[name])
    assert problems([str(path)]) == []
