"""The write-up (`make handouts`: handouts/build.py): built into a temporary folder, then read back
as a reader and a browser would: its points and API tables say what the registry says, no TeX
survives outside MathML, nothing is loaded from outside the file, and a broken source stops the
build loudly. A few seconds: one build (plus a second one for determinism), no notebooks.
"""
import html.parser
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT

from autograder import config, registry

from autograder.verbs import release

BUILD = os.path.join(ROOT, "handouts", "build.py")
SOURCE = os.path.join(ROOT, "handouts", "writeup.md")
NOTEBOOKS = ("01_rnn_gradients", "02_order_matters", "03_tbptt_language_model", "04_attention")
UPLOADS = ("rnn_layers.py", "lstm_layers.py", "tbptt.py", "attention.py")
TEX = re.compile(r"\\(?:frac|d?frac|sum|prod|odot|sqrt|partial|tanh|sigma|delta|left|right|text|mathrm|"
                 r"operatorname|begin|end|top|le|ge|cdot|lVert|rVert|tilde|quad|qquad|[A-Za-z]{2,})")


def load_build():
    """handouts/build.py as a module (under its own name: `build` is also a PyPI package)."""
    spec = importlib.util.spec_from_file_location("handouts_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_build(out, *extra):
    return subprocess.run([sys.executable, BUILD, "--out", str(out)] + list(extra), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("handouts")
    r = run_build(out)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(out, "writeup.html"), encoding="utf-8") as f:
        page = f.read()
    with open(os.path.join(out, "writeup.pdf"), "rb") as f:
        pdf = f.read()
    return {"out": out, "html": page, "pdf": pdf, "stdout": r.stdout}


def course_points():
    """{function: points} as the course grades them (the registry, with course.toml applied)."""
    overrides = config.load().points
    return {fn.name: overrides.get(fn.name, fn.points) for fn in registry.FUNCTIONS}


# --------------------------------------------------------------------------- reading the HTML
class Page(html.parser.HTMLParser):
    """What a reader sees: text outside <math>/<code>/<pre>/<style>/<script>; tables by id; tags."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    HIDDEN = {"math", "code", "pre", "style", "script", "title"}

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.stack, self.prose, self.tags, self.math = [], [], [], 0
        self.tables = {}  # id of the enclosing div -> rows (lists of cell texts)
        self.codes = {}  # the same -> rows (lists of cells: the texts of their <code> elements)
        self.rows_of = self.codes_of = None
        self.div_ids = []
        self.cell = self.cell_codes = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "math":
            self.math += 1
        if tag == "div":
            self.div_ids.append(attrs.get("id"))
        if tag == "table":
            owner = next((i for i in reversed(self.div_ids) if i), None)
            key = owner or "table-%d" % len(self.tables)
            self.rows_of, self.codes_of = self.tables.setdefault(key, []), self.codes.setdefault(key, [])
        elif tag == "tr" and self.rows_of is not None:
            self.rows_of.append([])
            self.codes_of.append([])
        elif tag in ("td", "th") and self.rows_of is not None:
            self.cell, self.cell_codes = [], []
        elif tag == "code" and self.cell_codes is not None:
            self.cell_codes.append("")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None and self.rows_of:
            self.rows_of[-1].append(" ".join("".join(self.cell).split()))
            self.codes_of[-1].append(self.cell_codes)
            self.cell = self.cell_codes = None
        elif tag == "table":
            self.rows_of = None
        elif tag == "div" and self.div_ids:
            self.div_ids.pop()
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
            if "code" in self.stack and self.cell_codes:
                self.cell_codes[-1] += data
        if not self.HIDDEN.intersection(self.stack):
            self.prose.append(data)


# --------------------------------------------------------------------------- the tests
def test_the_build_writes_a_real_html_page_and_pdf(built):
    page, pdf = built["html"], built["pdf"]
    assert page.startswith("<!DOCTYPE html>") and len(page) > 50_000
    assert "<title>Recurrent networks: the assignment</title>" in page
    assert pdf.startswith(b"%PDF-") and len(pdf) > 50_000 and pdf.rstrip().endswith(b"%%EOF")
    assert sorted(os.listdir(built["out"])) == ["writeup.html", "writeup.pdf"]  # nothing else left behind
    assert "writeup.pdf" in built["stdout"]


def test_the_points_table_is_the_registry(built):
    tables = Page(built["html"]).tables
    assert "points-table" in tables, sorted(tables)
    rows = tables["points-table"]
    points, subtotals, total = {}, {}, None
    for row in rows[1:]:
        file, name, value = row
        if name in registry.BY_NAME:
            points[name] = float(value)
        elif name.startswith("subtotal"):
            subtotals[name.split()[-1]] = float(value)
        elif file == "total":
            total = float(value)
    expected = course_points()
    assert points == {fn.name: expected[fn.name] for fn in registry.FUNCTIONS}
    assert list(points) == [fn.name for fn in registry.FUNCTIONS]  # in handout order
    for file in registry.FILES:
        assert subtotals[file + ".py"] == sum(expected[fn.name] for fn in registry.FUNCTIONS if fn.file == file)
    assert total == sum(expected.values())
    if not config.load().points:  # no course overrides: exactly the registry's own points
        assert total == sum(fn.points for fn in registry.FUNCTIONS)


def test_every_graded_function_is_in_the_api_table_with_its_arguments_and_returns(built):
    page = Page(built["html"])
    rows = {}
    for key, table in page.codes.items():
        for texts, codes in zip(page.tables[key], table):
            if len(codes) == 3 and codes[0] and codes[0][0] in registry.BY_NAME:
                rows[codes[0][0]] = (codes, texts)
    assert list(rows) == [fn.name for fn in registry.FUNCTIONS]
    for fn in registry.FUNCTIONS:
        (_, args, returns), texts = rows[fn.name]
        names = [a.prefix.rstrip(".") if hasattr(a, "prefix") else a for a in fn.args]
        assert [a.split("=")[0] for a in args] == names, (fn.name, args)
        assert returns == list(fn.returns), (fn.name, returns)
        for name in fn.outputs:  # every output but the cache has a shape or a type
            assert re.search(r"\b%s \S" % re.escape(name), texts[2]), (fn.name, name, texts[2])


def test_no_tex_survives_outside_mathml(built):
    page = Page(built["html"])
    prose = " ".join(page.prose)
    assert "$" not in prose, re.findall(r".{40}\$.{40}", prose)[:5]
    assert not TEX.findall(prose), TEX.findall(prose)[:10]
    with open(SOURCE, encoding="utf-8") as f:
        displays = f.read().count("$$") // 2
    assert page.math > displays + 100  # every display and inline formula became a <math> element


def test_the_page_loads_nothing_from_outside(built):
    page = built["html"]
    assert "<script" not in page  # MathML: typeset by the browser, no MathJax/KaTeX
    for tag, attrs in Page(page).tags:
        for key in ("src", "href", "data", "poster", "srcset"):
            if key in attrs and tag != "a":
                assert (attrs[key] or "").startswith(("data:", "#")), (tag, key, attrs[key])
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:|//)", page)
    assert "<style" in page  # the embedded style sheet


def test_the_writeup_says_what_to_run_and_what_to_upload(built):
    prose = " ".join(" ".join(Page(built["html"]).prose).split())
    text = re.sub(r"<[^>]+>", "", built["html"])
    for command in ("python check.py", "python check.py rnn_layers", "python check.py rnn_step_backward",
                    "python export_answers.py"):
        assert command in text, command
    for name in NOTEBOOKS:
        assert name + ".ipynb" in text, name
    for name in UPLOADS:
        assert name in text
    for fn in ("eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error"):
        assert fn in text
    assert "Hidden checks exist too" in prose


def test_every_notebook_of_the_kit_is_named_in_the_writeup(built):
    folder = os.path.join(ROOT, "handouts", "notebooks")
    names = {os.path.splitext(n)[0] for n in os.listdir(folder) if re.match(r"\d\d_\w+\.(py|ipynb)$", n)}
    assert names, "handouts/notebooks/ holds no notebook"
    assert names <= set(NOTEBOOKS), names - set(NOTEBOOKS)


def test_the_student_release_would_ship_it(built, tmp_path):
    root = tmp_path / "kit"
    shutil.copytree(built["out"], root / "dist" / "handouts")
    files = release.handout_files(str(root))  # raises on an otter-grader marker
    assert {os.path.basename(path) for path in files} >= {"writeup.html", "writeup.pdf"}
    text = built["html"]
    assert not [line for line in release.fenced_lines() if line in text]
    assert not [name for name in release.hidden_case_names() if name in text]


def test_the_build_is_deterministic(built, tmp_path):
    r = run_build(tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("writeup.html", "writeup.pdf"):
        with open(os.path.join(tmp_path, name), "rb") as f:
            again = f.read()
        first = built["html"].encode("utf-8") if name.endswith("html") else built["pdf"]
        assert again == first, name


@pytest.mark.parametrize("bad, message", [
    ("Scores: $\\frac{a}{$ and more.\n", "Could not convert TeX math"),  # pandoc cannot convert it
    ("A price of $ 5 and $ 6.\n", "a $ outside math"),  # not math at all: a bare $ in the text
    ("{{NO_SUCH_TABLE}}\n", "unknown placeholder"),
])
def test_a_broken_source_stops_the_build_loudly(tmp_path, capsys, bad, message):
    with open(SOURCE, encoding="utf-8") as f:
        text = f.read()
    source = tmp_path / "writeup.md"
    source.write_text(text.replace("# Goals", bad + "\n# Goals", 1), encoding="utf-8")
    out = tmp_path / "out"
    status = load_build().main(["--out", str(out), "--source", str(source)])  # in-process: torch is loaded
    err = capsys.readouterr().err
    assert status == 1, err  # the exit status of `python handouts/build.py`
    assert err.startswith("error:") and message in err, err
    assert not out.exists() or not os.listdir(out)  # nothing half-built


def test_typst_errors_and_unconvertible_symbols_are_build_errors(tmp_path):
    build = load_build()
    with pytest.raises(build.BuildError, match="typst failed"):
        build.compile_pdf("#let x = (\n", str(tmp_path))
    # pandoc writes Typst symbols the typst package no longer knows: they are renamed
    fixed = build.fix_typst_math('$a dot.circle b$ and `dot.circle` and $"diag" (x)$ and $upright("so")$')
    assert fixed == '$a dot.o b$ and `dot.circle` and $op("diag") (x)$ and $upright("so")$'
    pdf = build.compile_pdf("= T\n" + fixed + "\n", str(tmp_path))
    assert pdf.startswith(b"%PDF-")
