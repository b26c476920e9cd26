"""Build the write-up: handouts/writeup.md -> dist/handouts/writeup.html and writeup.pdf.

    .venv/bin/python handouts/build.py [--out dist/handouts] [--config course.toml]

Steps, each of which stops the build with a clear message (exit status 1) when it fails:

1. Fill the generated parts of the Markdown source: {{API_TABLE}} (every graded function's
   arguments and returns, from the registry, with the shapes read from the docstrings of the
   student files in assignment/) and {{POINTS_TABLE}} (every graded function's points, per-file
   subtotals and the total, from the registry with course.toml applied as `grade` applies it;
   the tests of instructor_tests/ are listed beside it). Nothing of either table is typed by hand.
   The text is course.toml's track's: what lies between `<!-- track: torch -->` and the next track
   marker is the torch track's, `<!-- track: numpy -->` the NumPy track's, `<!-- track: end -->` ends
   them (select_track); the generated regions (the rules, what is forbidden: autograder/verbs/
   documents.py) are filled again for the track, and the API table reads assignment/<track>/.
2. writeup.html: pandoc --standalone --embed-resources --mathml, with writeup.css embedded: one
   file that works offline, its math typeset by the browser (MathML), no JavaScript, no CDN.
3. writeup.pdf: pandoc -t typst (math converted to Typst's), compiled by the `typst` Python
   package with its embedded fonts only (the same PDF on every machine).

Pandoc's warnings (a formula it cannot convert, for one) and Typst's are errors. The HTML is
then checked: no TeX left outside <math> ($ delimiters, \\frac, ...), no external resource, and
nothing `make student` would refuse to ship (a line of a solution, a hidden check's name). The
output is deterministic: the same sources give the same bytes (the PDF's date is fixed, or
SOURCE_DATE_EPOCH). Only writeup.html and writeup.pdf are written in the output folder.
"""
import argparse
import ast
import dataclasses
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from autograder.engine import archive  # noqa: E402

from autograder import config, registry

from autograder import paths  # noqa: E402
from autograder.verbs import documents, instructor, release
from autograder.engine.spec import CACHE, DictArg  # noqa: E402

SOURCE = os.path.join(HERE, "writeup.md")
CSS = os.path.join(HERE, "writeup.css")
TYPST_HEADER = os.path.join(HERE, "template.typ")
DEFAULT_OUT = os.path.join(ROOT, "dist", "handouts")
FIXED_EPOCH = 315532800  # 1980-01-01, the release zip's fixed timestamp
TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")  # \frac, \sum, \odot, ... (never in a reader's text)
NBSP = "\u00a0"  # keeps a name and its shape, "(N, D)", on one line
SKIP_TEXT = {"math", "style", "script", "code", "pre", "title"}  # elements whose text is not prose


class BuildError(RuntimeError):
    """Why the handouts could not be built (printed as `error: ...`)."""


# --------------------------------------------------------------------------- the registry
def course_functions(config_path=None):
    """The graded functions with course.toml applied (copies: the registry is left as it is)."""
    cfg = config.load(config_path or config.DEFAULT_PATH)
    return config.apply(cfg, [dataclasses.replace(fn) for fn in registry.FUNCTIONS])


def arg_name(arg):
    """An argument's name as the student's signature spells it."""
    return arg.prefix.rstrip(".") if isinstance(arg, DictArg) else arg


# --------------------------------------------------------------------------- the docstrings
def stub_functions(file, root=ROOT, track="torch"):
    """{function name: (argument names, defaults {name: source}, docstring)} of assignment/<track>/<file>.py."""
    path = os.path.join(root, "assignment", track, file + ".py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = [a.arg for a in node.args.args]
            defaults = dict(zip(args[len(args) - len(node.args.defaults):],
                                (ast.unparse(d) for d in node.args.defaults)))
            out[node.name] = (args, defaults, ast.get_docstring(node) or "")
    return out


def doc_items(doc):
    """{name: description} of the "- name: text" items of a docstring (continuation lines joined).

    An item may name several values ("- Wq, Wk, Wv: ..."): each name gets the text.
    """
    items, current = {}, None
    for line in doc.splitlines():
        m = re.match(r"\s*- ([A-Za-z_][\w, ]*):\s*(.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for n in current:
                items[n] = m.group(2).strip()
        elif current and line.strip() and line.startswith("  "):
            for n in current:
                items[n] += " " + line.strip()
        else:
            current = None
    return items


def what(text):
    """A short type-and-shape for a docstring item: "(N, D)", "(N, T) int64", "float", "dict", ..."""
    m = re.match(r"As in (\w+)", text)
    if m:  # "- x, y, h0, params, k: As in truncated_bptt_grads."
        return None  # the caller looks the name up in that function
    shape = re.search(r"(?:of shape|each of shape|each)\s*(\([^()]*\))", text)
    kind = ""
    if re.search(r"\bint64\b", text):
        kind = " int64"
    elif re.search(r"\b[Bb]oolean\b|\bbool\b", text):
        kind = " bool"
    if shape:
        return shape.group(1) + kind
    for pattern, label in ((r"0-dim tensor", "0-dim tensor"), (r"1-D tensor", "1-D tensor"),
                           (r"0-dim array|NumPy scalar", "scalar"), (r"1-D array", "1-D array"),
                           (r"Python int", "int"), (r"Python float", "float"),
                           (r"\b[Dd]ict\b", "dict")):
        if re.search(pattern, text):
            return label
    return None


def describe(fn, stubs):
    """(arguments, returns) of one graded function as Markdown, shapes from its docstring."""
    if fn.name not in stubs:
        raise BuildError("assignment/%s.py has no function %s (the registry grades it): run `make stubs`"
                         % (fn.file, fn.name))
    args, defaults, doc = stubs[fn.name]
    names = [arg_name(a) for a in fn.args]
    if args != names:
        raise BuildError("%s: the registry calls it with (%s) but assignment/%s.py declares (%s)"
                         % (fn.name, ", ".join(names), fn.file, ", ".join(args)))
    items = doc_items(doc)

    def one(name):
        if name == CACHE:
            return "`cache`"
        if name not in items:
            raise BuildError("%s: its docstring in assignment/%s.py does not describe `%s`"
                             % (fn.name, fn.file, name))
        label = what(items[name])
        ref = re.match(r"As in (\w+)", items[name])
        if label is None and ref and ref.group(1) in stubs:
            label = what(doc_items(stubs[ref.group(1)][2]).get(name, ""))
        if label is None and name.startswith("d") and fn.forward in stubs:  # dX: the shape of X
            label = what(doc_items(stubs[fn.forward][2]).get(name[1:], ""))
        if label is None:
            raise BuildError("%s: cannot read the shape or type of `%s` from its docstring (%r)"
                             % (fn.name, name, items[name]))
        optional = "=%s" % defaults[name] if name in defaults else ""
        return "`%s%s`%s%s" % (name, optional, NBSP, label.replace(" ", NBSP))  # one unbreakable item

    return ", ".join(one(a) for a in names), ", ".join(one(r) for r in fn.returns)


def api_table(functions, root=ROOT, track="torch"):
    """{{API_TABLE}}: one table per student file, one row per graded function."""
    out = []
    for file in dict.fromkeys(fn.file for fn in functions):
        stubs = stub_functions(file, root, track)
        out += ["## `%s.py`" % file, "",
                "::: {.api-table}", "",
                "| function | arguments | returns |", "|:%s|:%s|:%s|" % ("-" * 14, "-" * 21, "-" * 15)]
        for fn in functions:
            if fn.file == file:
                args, returns = describe(fn, stubs)
                out.append("| `%s` | %s | %s |" % (fn.name, args, returns))
        out += ["", ":::", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- the points
def fmt_points(p):
    return "%g" % p


def instructor_entries(folder=None):
    """[(name, points)] of the instructor tests (read from their text, never run).

    A test hidden from students is listed without its name.
    """
    out = []
    for path in instructor.find_files(folder):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        for meta in instructor.static_tests(source, instructor._module(path)):
            hidden = meta.get("visibility") in ("hidden", "after_due_date", "after_published")
            out.append(("a hidden test" if hidden else meta["name"], float(meta.get("weight") or 0)))
    return out


def points_table(functions, tests=()):
    """{{POINTS_TABLE}}: file | function | points, per-file subtotals, the total; then instructor tests."""
    rows = ["::: {#points-table .points-table}", "",
            "| file | function | points |", "|:--|:--|--:|"]
    for file in dict.fromkeys(fn.file for fn in functions):
        fns = [fn for fn in functions if fn.file == file]
        for k, fn in enumerate(fns):
            rows.append("| %s | `%s` | %s |" % ("`%s.py`" % file if k == 0 else "", fn.name, fmt_points(fn.points)))
        rows.append("| | *subtotal, `%s.py`* | *%s* |" % (file, fmt_points(sum(fn.points for fn in fns))))
    total = sum(fn.points for fn in functions)
    rows += ["| **total** | | **%s** |" % fmt_points(total), "", ":::", ""]
    if tests:
        extra = sum(p for _, p in tests)
        rows += ["Gradescope also runs these tests of your code as a whole; they are not in `check.py`:", "",
                 "::: {#instructor-tests .points-table}", "",
                 "| test | points |", "|:%s|%s:|" % ("-" * 40, "-" * 8)]
        rows += ["| %s | %s |" % (name.replace("|", "\\|"), fmt_points(p)) for name, p in tests]
        rows += ["| **code assignment, in all** (%s + %s) | **%s** |" % (
            fmt_points(total), fmt_points(extra), fmt_points(total + extra)), "", ":::", ""]
    return "\n".join(rows)


def fill(text, tables):
    """The Markdown source with every {{PLACEHOLDER}} replaced; unknown or missing ones are errors."""
    found = re.findall(r"\{\{([A-Z_]+)\}\}", text)
    unknown = sorted(set(found) - set(tables))
    missing = sorted(set(tables) - set(found))
    if unknown or missing:
        raise BuildError("writeup.md: %s" % "; ".join(
            (["unknown placeholder(s) %s" % ", ".join("{{%s}}" % u for u in unknown)] if unknown else []) +
            (["placeholder(s) %s missing" % ", ".join("{{%s}}" % m for m in missing)] if missing else [])))
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: tables[m.group(1)], text)


TRACK_MARKER = re.compile(r"^<!-- track: (\w+) -->\n", re.MULTILINE)


def select_track(text, track):
    """text with only `track`'s blocks (between `<!-- track: NAME -->` and the next marker; `<!-- track: end -->`
    closes them), markers removed. A block of an unknown track, or one left open, is a BuildError."""
    out, pos, current = [], 0, None
    for m in TRACK_MARKER.finditer(text):
        name = m.group(1)
        if current is None or current == track:
            out.append(text[pos:m.start()])
        if name != "end" and name not in paths.TRACKS:
            raise BuildError("writeup.md line %d: unknown track %r (known: %s)" % (
                text.count("\n", 0, m.start()) + 1, name, ", ".join(paths.TRACKS)))
        if name == "end" and current is None:
            raise BuildError("writeup.md line %d: <!-- track: end --> without a block before it"
                             % (text.count("\n", 0, m.start()) + 1))
        current, pos = (None if name == "end" else name), m.end()
    if current is not None:
        raise BuildError("writeup.md: the last track block is not closed by <!-- track: end -->")
    out.append(text[pos:])
    return "".join(out)


def source_text(config_path=None, source=SOURCE, root=ROOT):
    """The write-up's Markdown for course.toml's track, with its generated tables filled in."""
    functions = course_functions(config_path)
    track = config.load(config_path or config.DEFAULT_PATH).track
    with open(source, encoding="utf-8") as f:
        text = select_track(f.read(), track)
    text = documents.fill(text, documents.regions(functions, root, config_path, track))
    return fill(text, {"API_TABLE": api_table(functions, root, track),
                       "POINTS_TABLE": points_table(functions, instructor_entries())})


# --------------------------------------------------------------------------- the tools
def pandoc(markdown, args, cwd):
    """Run the pandoc of pypandoc_binary on the Markdown text; its output as text. Warnings are errors."""
    import pypandoc

    cmd = [pypandoc.get_pandoc_path(), "--from=markdown", "--fail-if-warnings"] + args
    proc = subprocess.run(cmd, input=markdown.encode("utf-8"), capture_output=True, cwd=cwd)
    if proc.returncode != 0 or proc.stderr.strip():
        raise BuildError("pandoc %s failed (exit status %d):\n%s" % (
            " ".join(args), proc.returncode, proc.stderr.decode("utf-8", "replace").strip()))
    return proc.stdout.decode("utf-8")


def render_html(markdown, tmp):
    return pandoc(markdown, ["--to=html5", "--standalone", "--embed-resources", "--mathml",
                             "--toc", "--toc-depth=2", "--css=" + CSS,
                             ], cwd=tmp)


# Typst symbols that pandoc's typst writer still names but the typst package no longer knows
# (Typst 0.14 removed the `.circle` modifiers in favour of `.o`).
TYPST_RENAMES = {"dot.circle": "dot.o", "plus.circle": "plus.o", "minus.circle": "minus.o",
                 "times.circle": "times.o", "div.circle": "div.o"}
# The PDF's page and fonts (pandoc's typst template variables; the margin is a map, hence JSON).
TYPST_METADATA = {"papersize": "a4", "fontsize": "10.5pt", "margin": {"x": "2.1cm", "y": "2.3cm"},
                  "mainfont": "Libertinus Serif", "codefont": "DejaVu Sans Mono",
                  "mathfont": "New Computer Modern Math", "section-numbering": "1.1", "page-numbering": "1"}


def render_typst(markdown, tmp):
    meta = os.path.join(tmp, "typst-metadata.json")
    with open(meta, "w", encoding="utf-8") as f:
        json.dump(TYPST_METADATA, f)
    typ = pandoc(markdown, ["--to=typst", "--standalone", "--toc", "--toc-depth=2",
                            "--include-in-header=" + TYPST_HEADER, "--metadata-file=" + meta], cwd=tmp)
    return fix_typst_math(typ)


def math_spans(typ):
    """(start, end) of every $...$ of a Typst document, outside raw text (`...`, ```...```)."""
    spans, i, n = [], 0, len(typ)
    while i < n:
        if typ.startswith("```", i):
            end = typ.find("```", i + 3)
            i = n if end < 0 else end + 3
        elif typ[i] == "`":
            end = typ.find("`", i + 1)
            i = n if end < 0 else end + 1
        elif typ[i] == "\\":
            i += 2
        elif typ[i] == "$":
            j = i + 1
            while j < n and typ[j] != "$":
                j += 2 if typ[j] == "\\" else 1
            spans.append((i, j + 1))
            i = j + 1
        else:
            i += 1
    return spans


def fix_typst_math(typ):
    """Pandoc's Typst math, made to compile and typeset well with the typst package.

    Symbols Typst renamed (TYPST_RENAMES); \\operatorname{diag} comes out as the string "diag",
    which Typst sets as text with a space before "(": made an operator, op("diag"), as sin is;
    arg max gets its limits below.
    """
    def one(math):
        math = re.sub(r"\b(%s)\b(?!\.)" % "|".join(re.escape(k) for k in TYPST_RENAMES),
                      lambda m: TYPST_RENAMES[m.group(1)], math)
        def operator(m):
            name = m.group(1)
            limits = ", limits: #true" if re.sub(r"\W", "", name) in ("argmax", "argmin") else ""
            return 'op("%s"%s)' % (name, limits)

        # "name" alone, never the argument of upright("...") and friends; a name may hold a thin space
        return re.sub(r'(?<![\w"])(?<!\w\()"([A-Za-z][A-Za-z\s]*)"', operator, math)

    out, last = [], 0
    for start, end in math_spans(typ):
        out += [typ[last:start], one(typ[start:end])]
        last = end
    return "".join(out + [typ[last:]])


def compile_pdf(typ_text, tmp):
    """The PDF bytes of a Typst document, with the embedded fonts only; warnings are errors."""
    import typst

    path = os.path.join(tmp, "writeup.typ")
    with open(path, "w", encoding="utf-8") as f:
        f.write(typ_text)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", FIXED_EPOCH))
    try:
        compiler = typst.Compiler(path, root=tmp, ignore_system_fonts=True)
        pdf, warnings = compiler.compile_with_warnings(format="pdf", timestamp=epoch)
    except typst.TypstError as e:
        raise BuildError("typst failed: %s\n%s" % (getattr(e, "message", e), getattr(e, "diagnostic", "")))
    if warnings:
        raise BuildError("typst warned:\n%s" % "\n".join(
            "%s %s" % (getattr(w, "message", w), getattr(w, "diagnostic", "")) for w in warnings))
    return pdf


# --------------------------------------------------------------------------- the checks
class _Prose(html.parser.HTMLParser):
    """The text a reader sees outside <math>, <code>, <pre>, <style>, <script>; and the resources."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.text, self.resources, self.math = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "math":
            self.math += 1
        for key in ("src", "href", "data", "poster", "srcset"):
            if key in attrs and not (tag == "a" and key == "href"):
                self.resources.append((tag, key, attrs[key] or ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if not SKIP_TEXT.intersection(self.stack):
            self.text.append(data)


def html_problems(page):
    """What is wrong with the built HTML as a reader (offline) would meet it; [] when nothing."""
    parser = _Prose()
    parser.feed(page)
    prose = " ".join(parser.text)
    problems = []
    for m in re.finditer(r"\$", prose):
        problems.append("a $ outside math: ...%s..." % prose[max(0, m.start() - 40):m.end() + 40])
    for m in TEX_COMMAND.finditer(prose):
        problems.append("TeX outside math (%s): ...%s..." % (m.group(0), prose[max(0, m.start() - 40):m.end() + 40]))
    if parser.math < 20:
        problems.append("only %d <math> elements: the formulas were not converted to MathML" % parser.math)
    for tag, key, value in parser.resources:
        if not value.startswith(("data:", "#")):
            problems.append("<%s %s=%r> is not embedded" % (tag, key, value[:80]))
    for m in re.finditer(r"@import|url\(\s*['\"]?(?!data:|#)", page):
        problems.append("the CSS loads something from outside: %r" % page[m.start():m.start() + 80])
    if re.search(r"<script\b", page):
        problems.append("the page has a <script>: the write-up needs no JavaScript")
    return problems


def release_problems(text):
    """What `make student` would refuse in a shipped handout: solution lines, hidden names, markers."""
    problems = ["a line of a solution: %r" % line for line in sorted(release.fenced_lines()) if line in text]
    problems += ["the name of a hidden check: %r" % name for name in sorted(release.hidden_case_names())
                 if name in text]
    problems += ["an otter-grader marker: %r" % m for m in release.SOLUTION_MARKERS if m in text]
    return problems


# --------------------------------------------------------------------------- the build
def build(out=DEFAULT_OUT, config_path=None, source=SOURCE):
    """Build writeup.html and writeup.pdf into `out`; returns {path: size}. Raises BuildError."""
    markdown = source_text(config_path, source)
    problems = release_problems(markdown)
    if problems:
        raise BuildError("writeup.md holds what the student release must not ship:\n  " + "\n  ".join(problems))
    with tempfile.TemporaryDirectory(prefix="handouts-") as tmp:
        page = render_html(markdown, tmp)
        problems = html_problems(page) + release_problems(page)
        if problems:
            raise BuildError("writeup.html is not right:\n  " + "\n  ".join(problems))
        typ = render_typst(markdown, tmp)
        leftover = sorted(set(TEX_COMMAND.findall(typ)))
        if leftover:
            raise BuildError("the Typst source still holds TeX commands: %s" % ", ".join(leftover))
        pdf = compile_pdf(typ, tmp)
    if not pdf.startswith(b"%PDF"):
        raise BuildError("typst did not return a PDF")
    os.makedirs(out, exist_ok=True)
    written = {}
    for name, data in (("writeup.html", page.encode("utf-8")), ("writeup.pdf", pdf)):
        path = os.path.join(out, name)
        archive.write_atomic(path, lambda f, data=data: f.write(data))
        written[path] = len(data)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default dist/handouts)")
    p.add_argument("--config", help="the course's settings (default: course.toml at the top of the kit)")
    p.add_argument("--source", default=SOURCE, help="the Markdown source (default handouts/writeup.md)")
    p.add_argument("--markdown", action="store_true",
                   help="print the Markdown with its generated tables filled in, and build nothing")
    args = p.parse_args(argv)
    start = time.time()
    try:
        if args.markdown:
            sys.stdout.write(source_text(args.config, args.source))
            return 0
        written = build(os.path.abspath(args.out), args.config, args.source)
    except (BuildError, config.ConfigError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    for path, size in written.items():
        print("%9d  %s" % (size, os.path.relpath(path)))
    print("built the write-up in %.1f s" % (time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
