"""The notebooks' bridge to the public checker (check.py), for the `grader.check(...)` cells.

Ships in the student release next to check.py and the notebooks. `passes(...)` runs the public
checks of the named functions exactly as `python check.py NAME ...` does (the same engine, checks,
messages and hints as Gradescope, on fixed inputs: Gradescope draws new ones), prints what it
says, and returns True only if every one of them passed. `require(...)` is what the notebooks'
otter tests call: silent when every check passes, and otherwise it raises PublicChecksFailed with
the checker's report as its message. `short_errors()` makes a notebook show a stub's
NotImplementedError as one line instead of a traceback, and a failing `grader.check(...)` as the
checker's report alone (not otter's test framing around it).
"""
import contextlib
import html
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


class PublicChecksFailed(AssertionError):
    """Some public checks failed; the message is the checker's report."""


def _report(names):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ok = passes(*names)
    return ok, out.getvalue().rstrip() or "some public checks failed: run python check.py %s" % " ".join(names)


def require(*names):
    """The otter test of a notebook question: returns when every public check of `names` passes,
    raises PublicChecksFailed(the checker's report) otherwise."""
    ok, report = _report(names)
    if not ok:
        raise PublicChecksFailed(report)


FAILED_MARK = PublicChecksFailed.__name__ + ": "


def failed_reports(result):
    """The checker's reports in a failing otter result (otter.test_files.TestFile), one per failing
    test case, without otter's framing; a failure that is not the checker's keeps otter's message."""
    out = []
    for tcr in getattr(result, "test_case_results", []):
        if tcr.passed:
            continue
        message = tcr.message or ""
        at = message.find(FAILED_MARK)
        out.append(message[at + len(FAILED_MARK):] if at >= 0 else message)
    return out


def _short_reports(shell):
    """Show a failing grader.check(...) as the checker's report only (text and HTML)."""
    formatters = shell.display_formatter.formatters
    where = ("otter.test_files.abstract_test", "TestFile")

    def failing(result):
        return not getattr(result, "passed_all", True) and failed_reports(result)

    def as_text(result, p, cycle):
        p.text("\n\n".join(failed_reports(result)) if failing(result) else repr(result))

    def as_html(result):
        if failing(result):
            return "<pre>%s</pre>" % html.escape("\n\n".join(failed_reports(result)))
        return result._repr_html_()

    formatters["text/plain"].for_type_by_name(*where, as_text)
    formatters["text/html"].for_type_by_name(*where, as_html)


def short_errors():
    """In IPython: show NotImplementedError (an unwritten stub) as one line, not a traceback, and a
    failing grader.check(...) as the checker's report only."""
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
    _short_reports(shell)
