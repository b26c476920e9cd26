"""Turn a Report into Gradescope's results.json and into the terminal table.

Gradescope's format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
One test entry per graded function (name holds the function's exact name, first tag is the
function's name). Public checks are explained in full; hidden checks show only pass/fail until
grades are published, when a separate 0-point entry per function reveals their messages.
"""
import json
import textwrap

from . import archive
from .spec import NO_CUDA_IN_NUMPY

# A check that counts only beside others that passed ("inputs left unchanged", "vectorised"): shown as
# NOT CREDITED, never as a failure. Defined here, where reports are written, without torch.
NOT_CREDITED = "not credited: no other check of this function passed"

MAX_OUTPUT_CHARS = 8000  # bytes of JSON per test entry, and for the notes: results.json stays far under
# Gradescope's 1 MB whatever the student prints, raises or names (a character may take 12 bytes in JSON)
TRUNCATED = "\n[... truncated]"
MD_WIDTH = 100  # characters a line of a message's code block in Gradescope's Markdown (wrapped beyond)


def clip(text, limit=MAX_OUTPUT_CHARS):
    """text, cut so that it takes at most `limit` bytes inside results.json (json.dumps escapes every
    non-ASCII character: up to 12 bytes for one), marked as cut when it was."""
    size = lambda t: len(json.dumps(t)) - 2  # noqa: E731  (without the quotes)
    if size(text) <= limit:
        return text
    lo, hi = 0, min(len(text), limit)  # the longest prefix that fits with the mark
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(text[:mid] + TRUNCATED) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + TRUNCATED


def fmt_points(x):
    return ("%.2f" % x).rstrip("0").rstrip(".")


HIDDEN_LATER = "details are shown after grades are published"


def _entries(fr, show_hidden):
    """What function_output lists, in order: (kind, labels, message). kind: "note", "pass", "fail",
    "hidden" (a failed hidden check whose details wait) or "not credited" (a check that counts only beside
    another that passed: nothing is wrong with it in itself). Failures that share a message are one entry,
    whose labels are every check that gave it."""
    out = [("note", [], fr.first_failure())] if fr.forbidden else []
    out += [("note", [], "Static check: " + text) for text in fr.static]
    out += [("note", [], "Note: " + text) for text in fr.notes]
    by_message = {}
    for c in fr.checks:
        label = c.name + (" [hidden]" if c.hidden else "")
        if c.passed:
            out.append(("pass", [label], ""))
        elif c.message == NOT_CREDITED:
            out.append(("not credited", [label], "counts once another check of this function passes"))
        elif c.hidden and not show_hidden:
            out.append(("hidden", [label], HIDDEN_LATER))
        elif c.message in by_message:
            by_message[c.message][1].append(c.short + (" [hidden]" if c.hidden else ""))
        else:
            by_message[c.message] = ("fail", [label], c.message)
            out.append(by_message[c.message])
    return out


def function_output(fr, show_hidden, markdown=False):
    """Every check of one function, as text (the terminal, the public checker) or as Markdown (Gradescope:
    a short first line, then each check). Failures that share a reason are reported once, every check
    named in brackets."""
    entries = _entries(fr, show_hidden)
    if not markdown:
        lines = []
        for kind, labels, message in entries:
            if kind == "note":
                lines.append(message)
            elif kind == "pass":
                lines.append("PASS  %s" % labels[0])
            elif kind in ("hidden", "not credited"):
                lines.append("%s  %s (%s)" % ("FAIL" if kind == "hidden" else "NOT CREDITED", labels[0], message))
            else:
                same = " [and, for the same reason: %s]" % "; ".join(labels[1:]) if len(labels) > 1 else ""
                lines.append("FAIL  %s%s\n%s" % (labels[0], same, _indent(message, "      ")))
        return "\n".join(lines)
    failed = sum(len(labels) for kind, labels, _ in entries if kind in ("fail", "hidden"))
    total = sum(len(labels) for kind, labels, _ in entries if kind != "note")
    first = (fr.first_failure(show_hidden).splitlines() or [""])[0]
    head = ("**Every check passed (%d).**" % total if not failed and not fr.forbidden else
            "**%d of %d checks failed.** %s" % (failed, total, _md_text(first)) if failed else
            "**0 points.** %s" % _md_text(first))
    parts = [head]
    for kind, labels, message in entries:
        named = _md_labels(labels)
        if kind == "note":
            parts.append(_md_text(message))
        elif kind == "pass":
            parts.append("PASS %s" % named)
        elif kind in ("hidden", "not credited"):
            parts.append("%s %s: %s" % ("**FAIL**" if kind == "hidden" else "NOT CREDITED", named, message))
        else:
            parts.append(_md_fail(named, message))
    return "\n\n".join(parts)


def _md_labels(labels):
    """Check labels as Markdown code spans, one after the other."""
    return ", ".join("`%s`" % label.replace("`", "'") for label in labels)


def _md_fail(named, message):
    """A failing check in Markdown: its (already escaped) label, then its message in a code block."""
    return "**FAIL** %s\n\n%s" % (named, _indent(message, "    ", MD_WIDTH))


def _indent(text, prefix, width=None):
    """text with every line indented by prefix. Lines end wherever a terminal or a Markdown renderer ends
    them (str.splitlines: \\r, \\u2028, ... too): a message of the student's cannot put a line of its own
    outside the block (a FAIL turned PASS on a terminal, a heading or HTML in Gradescope's Markdown).
    width: lines longer than this are wrapped at spaces, their continuations indented two more spaces
    (Gradescope shows a code block's long line in a box that scrolls sideways); a word is never cut."""
    lines = text.splitlines() or [""]
    if width:
        lines = [piece for line in lines for piece in (textwrap.wrap(
            line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
            if len(line) > width else [line]) or [line]]
    return "\n".join(prefix + line for line in lines)


def _md_text(text):
    """Text shown as Markdown prose: what could start a construct (headings, lists, HTML, code) escaped."""
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "\\`*_[]<>#|" else ch)
    return "  \n".join("".join(out).splitlines())


def gradescope(report, visibility=None, hidden_details="after_published"):
    """The results.json dictionary for a Report.

    visibility: function name -> Gradescope visibility of its entry (default "visible");
    hidden_details: the visibility of the entries that explain failed hidden checks.
    """
    tests = []
    files = list(dict.fromkeys(fr.fn.file for fr in report.functions))
    for fr in report.functions:
        fn = fr.fn
        # numbered in the handout's order: file, then function within it (Gradescope sorts by it)
        number = "%d.%d" % (files.index(fn.file) + 1,
                            [f.fn.name for f in report.functions if f.fn.file == fn.file].index(fn.name) + 1)
        tests.append({
            "name": "%s (%s.py)" % (fn.name, fn.file),
            "number": number,
            "score": fr.score,
            "max_score": fr.max_score,
            "status": "passed" if fr.score >= fr.max_score else "failed",
            "output": clip(function_output(fr, show_hidden=False, markdown=True)),
            "output_format": "md",
            "visibility": (visibility or {}).get(fn.name, "visible"),
            "tags": [fn.name, fn.file],
        })
        hidden_failed = [c for c in fr.checks if c.hidden and not c.passed]
        if hidden_failed:
            tests.append({
                "name": "%s (%s.py): hidden checks, details" % (fn.name, fn.file),
                "number": number + ".1",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": clip("\n\n".join(_md_fail(_md_labels([c.name]), c.message) for c in hidden_failed)),
                "output_format": "md",
                "visibility": hidden_details,
                "tags": [fn.name, fn.file, "hidden-details"],
            })
    if report.review:
        tests.append({
            "name": "static scan: lines for the instructor to read",
            "score": 0.0,
            "max_score": 0.0,
            "output": clip("These lines reach torch by a side road, run code a scan cannot read, or reach "
                            "into the worker's own objects (gc, frames, ctypes), threads, processes or signals, "
                            "which could switch off the operator observer. They cost no points (the operators "
                            "that ran were checked); read them if the scores look too good:\n"
                            + "\n".join(report.review)),
            "visibility": "hidden",
            "tags": ["static-review"],
        })
    if report.isolation:
        tests.append(isolation_entry(report.isolation))
    summary = "Score %s / %s." % (fmt_points(report.score), fmt_points(report.max_score))
    if report.track == "numpy":
        summary += " NumPy track: %s." % NO_CUDA_IN_NUMPY
    elif report.skipped_cuda:
        summary += " CUDA checks were not run (no GPU here); they do not count."
    if report.notes:
        summary += "\n" + clip("\n".join(report.notes))
    if report.student_output:
        summary += "\n\nWhat your code printed (first part):\n" + clip(report.student_output, 4000)
    return {
        "score": report.score,
        "execution_time": round(report.seconds, 2),
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def isolation_entry(layers):
    """The hidden entry that tells instructors which kernel layers the student's code ran under."""
    weak = [name for name, status in layers.items() if status != "active"]
    head = ("Every isolation layer was active." if not weak else
            "Not active here: %s. See the README's \"Sandbox and limits\" for what each layer stops." % ", ".join(weak))
    return {"name": "sandbox: isolation layers", "score": 0.0, "max_score": 0.0, "visibility": "hidden",
            "output": head + "\n" + "\n".join("%s: %s" % kv for kv in layers.items()), "tags": ["sandbox"]}


def write_json(data, path, mode=0o644):
    """Write results atomically (a reader never sees half a file); mode: the file's permissions."""
    archive.write_atomic(path, lambda f: f.write(json.dumps(data, indent=1).encode()), mode=mode)


def table(report, width=140, show_hidden=True):
    """The terminal summary: function, score/max, first failing check."""
    rows = []
    name_w = max(len(fr.fn.name) for fr in report.functions) if report.functions else 10
    rows.append("%-*s  %9s  %s" % (name_w, "function", "score", "first failing check"))
    rows.append("-" * min(width, name_w + 13 + 40))
    for fr in report.functions:
        first = (fr.first_failure(show_hidden).splitlines() or [""])[0].replace("] %s raised " % fr.fn.name, "] raised ")
        room = max(20, width - name_w - 13)
        if len(first) > room:
            first = first[:room - 3] + "..."
        rows.append("%-*s  %4s/%-4s  %s" % (name_w, fr.fn.name, fmt_points(fr.score), fmt_points(fr.max_score),
                                             first or "all checks passed"))
    rows.append("-" * min(width, name_w + 13 + 40))
    rows.append("%-*s  %4s/%-4s  (%.1f s, device %s%s)" % (
        name_w, "total", fmt_points(report.score), fmt_points(report.max_score), report.seconds,
        report.device, ", NumPy track: no CUDA checks" if report.track == "numpy" else
        ", CUDA checks skipped: no GPU" if report.skipped_cuda else ""))
    for note in report.notes:
        rows.append("note: " + note)
    return "\n".join(rows)


def details(report, show_hidden=True):
    """Full messages of every failing function, for the terminal."""
    out = []
    for fr in report.functions:
        if fr.score < fr.max_score:
            out.append("== %s (%s/%s)\n%s" % (fr.fn.name, fmt_points(fr.score), fmt_points(fr.max_score),
                                             function_output(fr, show_hidden)))
    return "\n\n".join(out)
