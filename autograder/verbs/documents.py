"""What the documents say about points and rules, generated: the kit's Markdown never types a total by hand.

The write-up (handouts/writeup.md), the kit's README.md and docs/*.md, and the students' README (release.readme)
hold generated regions, each between two HTML comments, `<!-- NAME:begin -->` and `<!-- NAME:end -->`:

- points (a table): every student file with its functions and points, the instructor tests, the code assignment's
  total, the written questions and the total of both assignments;
- full-marks (inline, on one line): what "Test Autograder" shows for the reference solutions;
- written (a table): the written questions of the notebooks, the outline of the written assignment on Gradescope;
- written-total (inline): how many written questions, how many points;
- rules (a table): the rules students follow, how the grader sees each, and what breaking it costs;
- forbidden (a table): what students may not use (engine/forbidden.py, markdown_table()).

From: the registry with course.toml applied, as `grade` applies it (config.apply); the instructor tests as the
grader reads them (instructor.static_tests: their text, never run); the written questions of the notebooks'
sources (handouts/notebooks/NN_name.py: otter's "BEGIN QUESTION" blocks with `manual: true`, their points and
their "**Question N (written).**" title); engine/speed.py (the vectorisation check) and engine/forbidden.py.
The write-up's per-function points table is {{POINTS_TABLE}}, filled when it is built (handouts/build.py).

    python -m autograder documents [FILE.md ...] [--check]

rewrites the regions of the files (default: README.md, docs/*.md, handouts/writeup.md); --check changes nothing
and lists the files whose regions are out of date (exit status 1). tests/test_documents.py checks them.
"""
import argparse
import dataclasses
import glob
import os
import re
import sys

from .. import config, registry
from ..engine import forbidden, speed
from ..paths import KIT_ROOT
from . import instructor

NOTEBOOKS = os.path.join("handouts", "notebooks")  # under the kit's root
HIDDEN = ("hidden", "after_due_date", "after_published")  # instructor-test visibilities students do not see

BLOCK = ("points", "written", "rules", "forbidden")  # tables: the region holds lines of their own
INLINE = ("full-marks", "written-total")  # words inside a sentence: the region stays on its line
MARKER = re.compile(r"<!-- ([a-z][a-z-]*):(begin|end) -->")


class DocumentError(ValueError):
    """A document's regions cannot be filled: markers that do not pair up, or an unknown region."""


def begin(name):
    return "<!-- %s:begin -->" % name


def end(name):
    return "<!-- %s:end -->" % name


# --------------------------------------------------------------------------- the sources
@dataclasses.dataclass(frozen=True)
class WrittenQuestion:
    notebook: str  # 01_rnn_gradients.ipynb
    name: str  # otter's name of the question (vanishing_written)
    title: str  # what the notebook calls it (Question 1)
    points: float


QUESTION_TITLE = re.compile(r"\*\*(Question [\w.]+)")


def written_questions(root=KIT_ROOT):
    """The written questions (otter's manual questions) of the notebooks' sources, in notebook order."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, NOTEBOOKS, "[0-9][0-9]_*.py"))):
        notebook = os.path.splitext(os.path.basename(path))[0] + ".ipynb"
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "# # BEGIN QUESTION":
                continue
            meta, j = {}, i + 1
            while j < len(lines) and re.match(r"# \w+: ", lines[j]):
                key, value = lines[j][2:].split(": ", 1)
                meta[key] = value.strip()
                j += 1
            if meta.get("manual", "").lower() != "true":
                continue  # an autograded check of the notebook (grader.check), no written answer
            title = None
            while j < len(lines) and lines[j].strip() != "# # END QUESTION" and title is None:
                m = QUESTION_TITLE.search(lines[j])
                title = m.group(1) if m else None
                j += 1
            if title is None:
                raise DocumentError("%s: the written question %s has no **Question ...** title"
                                    % (os.path.relpath(path, root), meta.get("name")))
            out.append(WrittenQuestion(notebook, meta.get("name", ""), title, float(meta.get("points", 0))))
    return out


def instructor_tests(root=KIT_ROOT):
    """[(name, points, hidden)] of the instructor tests, as the grader reads them (their text, never run)."""
    out = []
    for path in instructor.find_files(os.path.join(root, "instructor_tests")):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        module = os.path.splitext(os.path.basename(path))[0]
        for meta in instructor.static_tests(source, module):
            out.append((meta["name"], float(meta.get("weight") or 0), meta.get("visibility") in HIDDEN))
    return out


def course_functions(root=KIT_ROOT, config_path=None):
    """The registry's functions as this course grades them (course.toml applied, as `grade` applies it)."""
    cfg = config.load(config_path or os.path.join(root, "course.toml"))
    return config.apply(cfg, registry.FUNCTIONS)


def course_track(root=KIT_ROOT, config_path=None):
    """course.toml's track (paths.TRACKS)."""
    return config.load(config_path or os.path.join(root, "course.toml")).track


def fmt(points):
    return "%g" % points


# --------------------------------------------------------------------------- the regions
def points_table(functions, tests, written):
    """Every student file with its functions and points; the instructor tests; the written questions; totals."""
    rows = ["| part | what is graded | points |", "|---|---|--:|"]
    for file in dict.fromkeys(fn.file for fn in functions):
        fns = [fn for fn in functions if fn.file == file]
        rows.append("| `%s.py` | %s | %s |" % (file, ", ".join("`%s`" % fn.name for fn in fns),
                                               fmt(sum(fn.points for fn in fns))))
    code = sum(fn.points for fn in functions)
    if tests:
        names = ["a hidden test" if hidden else name.replace("|", "\\|") for name, _, hidden in tests]
        rows.append("| instructor tests | %s (Gradescope only, not in `check.py`) | %s |"
                    % ("; ".join(names), fmt(sum(p for _, p, _ in tests))))
        code += sum(p for _, p, _ in tests)
    rows.append("| **the code assignment** | autograded on Gradescope | **%s** |" % fmt(code))
    if written:
        rows.append("| the written questions | %d questions in the notebooks, graded by hand | %s |"
                    % (len(written), fmt(sum(q.points for q in written))))
        rows.append("| **in all** | the code and the written assignment | **%s** |"
                    % fmt(code + sum(q.points for q in written)))
    return "\n".join(rows) + "\n"


def full_marks(functions, tests):
    """What "Test Autograder" shows for the reference solutions, in words."""
    fns = sum(fn.points for fn in functions)
    if not tests:
        return "%s/%s" % (fmt(fns), fmt(fns))
    extra = sum(p for _, p, _ in tests)
    return ("%s/%s (%s/%s on the graded functions' checks, %s/%s on the instructor tests)"
            % (fmt(fns + extra), fmt(fns + extra), fmt(fns), fmt(fns), fmt(extra), fmt(extra)))


def written_table(written):
    """The written assignment's outline: one Gradescope question per written question of the notebooks."""
    rows = ["| Gradescope question | notebook | in the notebook | points |", "|--:|---|---|--:|"]
    for number, q in enumerate(written, 1):
        rows.append("| %d | `%s` | %s | %s |" % (number, q.notebook, q.title, fmt(q.points)))
    rows.append("| | **the written assignment** | | **%s** |" % fmt(sum(q.points for q in written)))
    return "\n".join(rows) + "\n"


def written_total(written):
    n = len(written)
    return "%d question%s, %s points" % (n, "" if n == 1 else "s", fmt(sum(q.points for q in written)))


def _share(weight):
    words = {0.25: "a quarter of one check's", 0.5: "half of one check's", 1.0: "one check's"}
    return words.get(weight, "%g of one check's" % weight)


def rules_table(track="torch"):
    """The rules, how the grader sees each broken one, and what it costs (engine/runner.py, outcome.py, speed.py),
    for the track (paths.TRACKS)."""
    if track == "numpy":
        return numpy_rules_table()
    rows = [
        "| rule | how the grader sees it | what breaking it costs |", "|---|---|---|",
        "| **No autograd**: compute every gradient yourself (no `.backward()`, no `torch.autograd`, no "
        "`requires_grad`) | every operator that runs during your call, and the calls of autograd's entry points "
        "and engine (the lines of your source that name one are pointed out) | **0 points** for that function, "
        "whatever its values |",
        "| **No library layer that does the function's work** (the table of what is forbidden) | the operator "
        "that runs, whatever name reaches it | **0 points** for that function, whatever its values |",
        "| **Inputs are never modified in place** | every input, compared after every call | the check "
        "\"inputs left unchanged\": %s share of that function's points |" % _share(1.0),
        "| **dtype and device are kept**: return tensors of the input's dtype, on its device | every returned "
        "tensor | every check where it shows: a bare `torch.zeros(...)` is `float32` on the CPU, so every "
        "`float64` check fails |",
        "| **Loop over time steps only**: the batch as tensor operations | the sequence and attention "
        "functions, on a larger input: Gradescope times your call against the reference solution's; "
        "`check.py`, which has no reference solution, counts your call's tensor operations against the "
        "reference's | the check \"vectorised\" when more than %gx slower: %s share |"
        % (speed.FACTOR, _share(speed.WEIGHT)),
    ]
    return "\n".join(rows) + "\n"


def numpy_rules_table():
    """rules_table in the NumPy track: the same rules, in NumPy's words (engine/compare.py's messages)."""
    rows = [
        "| rule | how the grader sees it | what breaking it costs |", "|---|---|---|",
        "| **NumPy only, no autograd**: compute every gradient yourself; no torch operator and no autograd "
        "library (the table of what is forbidden) | every torch operator that runs during your call, and the "
        "import of an autograd library | **0 points** for that function, whatever its values |",
        "| **Inputs are never modified in place** (no `x += ...` on an argument) | every input array, compared "
        "after every call | the check \"inputs left unchanged\": %s share of that function's points |" % _share(1.0),
        "| **dtype is kept**: return arrays of the input's dtype | every returned array | every check where it "
        "shows: a bare `np.zeros(...)` is `float64`, so every `float32` check fails (use `dtype=x.dtype` or "
        "`np.zeros_like(x)`); a loss may be a Python float |",
        "| **Loop over time steps only**: the batch as array operations | the sequence and attention "
        "functions, on a larger input: Gradescope times your call against the reference solution's; "
        "`check.py`, which has no reference solution, counts the lines of your Python that run against the "
        "reference's | the check \"vectorised\" when more than %gx slower: %s share |"
        % (speed.FACTOR, _share(speed.WEIGHT)),
    ]
    return "\n".join(rows) + "\n"


def regions(functions=None, root=KIT_ROOT, config_path=None, track=None):
    """{region name: its generated text} for this kit (functions: the course's, by default; track: course.toml's,
    by default)."""
    functions = course_functions(root, config_path) if functions is None else functions
    track = course_track(root, config_path) if track is None else track
    tests, written = instructor_tests(root), written_questions(root)
    return {
        "points": points_table(functions, tests, written),
        "full-marks": full_marks(functions, tests),
        "written": written_table(written),
        "written-total": written_total(written),
        "rules": rules_table(track),
        "forbidden": forbidden.markdown_table(track),
    }


# --------------------------------------------------------------------------- filling a document
def fill(text, texts):
    """text with every region holding its generated text (texts: regions()). A block region becomes
    "<begin>\\n\\n<table>\\n<end>" (as forbidden.fill writes it), an inline one "<begin>words<end>".

    Raises DocumentError where markers do not pair up (in order, one end per begin), where a region is
    unknown, or where an inline region spans lines."""
    out, pos, problems = [], 0, []
    markers = list(MARKER.finditer(text))
    i = 0
    while i < len(markers):
        m = markers[i]
        name, kind = m.group(1), m.group(2)
        closing = markers[i + 1] if i + 1 < len(markers) else None
        line = text.count("\n", 0, m.start()) + 1
        if kind != "begin" or closing is None or closing.group(1) != name or closing.group(2) != "end":
            problems.append("line %d: %s has no %s after it" % (line, m.group(0), end(name)) if kind == "begin"
                            else "line %d: %s without %s before it" % (line, m.group(0), begin(name)))
            break
        if name not in texts or name not in BLOCK + INLINE:
            problems.append("line %d: no region is called %r (known: %s)" % (line, name, ", ".join(BLOCK + INLINE)))
            break
        inside = text[m.end():closing.start()]
        if name in INLINE:
            if "\n" in inside:
                problems.append("line %d: %s is a region of words: keep it on one line" % (line, name))
                break
            body = texts[name].strip()
        else:
            body = "\n\n" + texts[name].rstrip("\n") + "\n\n"
            if "\n" not in inside and inside.strip():
                problems.append("line %d: %s is a table: put its markers on lines of their own" % (line, name))
                break
        out += [text[pos:m.end()], body]
        pos = closing.start()
        i += 2
    if problems:
        raise DocumentError("; ".join(problems))
    return "".join(out) + text[pos:]


def documents(root=KIT_ROOT):
    """The kit's Markdown with generated regions: README.md, docs/*.md, handouts/writeup.md."""
    return ([os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
            + [os.path.join(root, "handouts", "writeup.md")])


def update(path, texts, check=False):
    """Whether the file's regions differ from `texts`; unless check, the file is rewritten to hold them."""
    try:
        return forbidden.update(path, check, transform=lambda text: fill(text, texts))
    except DocumentError as e:
        raise DocumentError("%s: %s" % (path, e))


COMMAND = "python -m autograder documents"


def main(argv=None):
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="*", metavar="FILE.md",
                   help="Markdown files (default: README.md, docs/*.md and handouts/writeup.md)")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files whose generated regions are out of date (exit status 1)")
    p.add_argument("--config", help="the course's settings (default: course.toml at the top of the kit)")
    args = p.parse_args(argv)
    try:
        texts = regions(config_path=args.config)
        stale = [path for path in (args.files or documents()) if update(path, texts, check=args.check)]
    except (OSError, DocumentError, config.ConfigError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    for path in stale:
        print("%s: generated regions out of date (%s %s)" % (path, COMMAND, os.path.relpath(path))
              if args.check else "%s: generated regions rewritten" % os.path.relpath(path))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
