"""The notebooks' bridge to the public checker (check.py), for the `grader.check(...)` cells.

Ships in the student release next to check.py and the notebooks. `passes(...)` runs the public
checks of the named functions exactly as `python check.py NAME ...` does (the same engine, checks,
messages and hints as Gradescope, on fixed inputs: Gradescope draws new ones), prints what it says, and returns True only if every one of them
passed; `check(...)` is the same but silent unless a check fails: the notebooks' otter tests call
it. `short_errors()` makes a stub's
NotImplementedError show as one line in a notebook instead of a traceback.
"""
import contextlib
import io
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def passes(*names):
    """Run the public checks of the named functions (or files); print the report; True if all passed.

    Inputs:
    - names: function names such as "rnn_step_forward", or file names such as "rnn_layers".
    """
    folder = os.environ.get("RNN_ASSIGNMENT_DIR", HERE)
    cmd = [sys.executable, os.path.join(folder, "check.py"), *names]
    r = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    print((r.stdout + r.stderr).rstrip())
    return r.returncode == 0


def check(*names):
    """The otter test of a notebook question: silent when every public check of `names` passes,
    the checker's report otherwise (otter compares the test's output with none)."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        ok = passes(*names)
    if not ok:
        print(report.getvalue() or "some public checks failed: run python check.py")


def short_errors():
    """In IPython: show NotImplementedError (an unwritten stub) as one line, not a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        stb = ["%s: %s (write it in your .py file, then restart the kernel and run again)" % (etype.__name__, value)]
        shell._showtraceback(etype, value, stb)  # IPython discards what a custom handler returns
        return stb

    shell.set_custom_exc((NotImplementedError,), handler)
