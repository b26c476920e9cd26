"""The documents agree with the grader (issue 20, items 9-12).

- Every total and table about points and rules is generated (autograder/verbs/documents.py) into marked
  regions of README.md, docs/*.md, handouts/writeup.md and the students' README: the regions are up to
  date, they say what the registry, course.toml, the instructor tests and the notebooks say, and no
  document types a total by hand outside them.
- The written assignment has a procedure: its questions and points come from the notebooks, and
  `make student` prints its outline.
- Every command of the documents runs as written, or is marked a template by a `<placeholder>`:
  `make X` targets exist (`make -n`), `python -m autograder VERB ...` parses with the kit's own parser
  (every cmd_* replaced by a recorder), the paths, files and functions they name exist, and the
  students' `python check.py NAME` names a file or function of the assignment.
- The gradient-check example of the write-up, run against the reference solutions, prints errors
  within what the write-up promises; against a buggy backward pass, errors as large as it promises.
"""
import argparse
import contextlib
import glob
import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from helpers import ASSIGNMENT, ROOT, copy_solutions, make_variant

from autograder import cli, config, registry
from autograder.engine import forbidden, outcome, speed
from autograder.verbs import documents, release

README = os.path.join(ROOT, "README.md")
WRITEUP = os.path.join(ROOT, "handouts", "writeup.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
DOCUMENTS = documents.documents(ROOT)
KIT_DOCS = [README] + DOCS  # the instructors' documents
RUN = [README] + DOCS + [WRITEUP]  # whose commands must run as written


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def rel(path):
    return os.path.relpath(path, ROOT)


@pytest.fixture(scope="module")
def texts():
    return documents.regions()


@pytest.fixture(scope="module")
def course():
    return documents.course_functions()


@pytest.fixture(scope="module")
def student_readme(course):
    return release.readme(course, has_handouts=True)


# --------------------------------------------------------------------------- the generated regions
@pytest.mark.parametrize("path", DOCUMENTS, ids=[rel(p) for p in DOCUMENTS])
def test_every_generated_region_is_up_to_date(path, texts):
    assert not documents.update(path, texts, check=True), (
        "%s: its generated tables or totals are out of date: %s %s" % (rel(path), documents.COMMAND, rel(path)))


WHERE = {  # the regions each document must hold
    "README.md": {"full-marks", "written-total", "points"},
    "docs/release.md": {"full-marks", "points", "written"},
    "docs/gradescope.md": {"full-marks"},
    "docs/scoring.md": {"full-marks", "points", "rules"},
    "docs/sandbox.md": {"forbidden"},
    "handouts/writeup.md": {"written", "rules", "forbidden"},
}


def region_names(text):
    return {m.group(1) for m in documents.MARKER.finditer(text)}


@pytest.mark.parametrize("path", sorted(WHERE))
def test_the_documents_hold_their_regions(path):
    assert WHERE[path] <= region_names(read(os.path.join(ROOT, path))), path


def test_the_students_readme_holds_the_same_tables(student_readme, texts):
    assert {"points", "rules", "forbidden", "written"} <= region_names(student_readme)
    assert documents.fill(student_readme, texts) == student_readme
    assert forbidden.fill(student_readme) == student_readme
    for name in ("points", "rules", "written"):
        assert texts[name] in student_readme, name
    submit = student_readme[student_readme.index("## Submit"):]
    assert "The code assignment" in submit and "The written assignment" in submit
    assert "export_answers.py" in submit and "matched to its page" in submit
    for file in registry.FILES:
        assert "`%s.py`" % file in submit


def test_no_document_types_a_total_by_hand(course):
    """Outside the regions (and code blocks), no "87/87" and none of the totals: they would go stale."""
    tests = documents.instructor_tests()
    written = documents.written_questions()
    functions = sum(fn.points for fn in course)
    code = functions + sum(p for _, p, _ in tests)
    totals = {documents.fmt(functions), documents.fmt(code), documents.fmt(code + sum(q.points for q in written))}
    for path in KIT_DOCS + [WRITEUP]:
        text = re.sub(r"<!-- ([a-z-]+):begin -->.*?<!-- \1:end -->", "", read(path), flags=re.S)
        text = FENCE.sub("", text)
        assert not re.findall(r"\b(\d+)/\1\b", text), (rel(path), re.findall(r".{30}\b(\d+)/\1\b.{30}", text))
        for total in totals:
            found = re.findall(r".{0,40}(?<![\w.])%s(?![\w.]).{0,40}" % re.escape(total), text)
            assert not found, "%s types the total %s by hand: %s" % (rel(path), total, found)
        written_total = documents.fmt(sum(q.points for q in written))
        assert not re.search(r"(?<![\w.])%s points" % written_total, text), rel(path)


# --------------------------------------------------------------------------- what the regions say
def table_rows(markdown):
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith("|") and not line.startswith("|--") and not re.match(r"\|[-:|]+\|$", line)]


def test_the_points_are_the_registrys_with_course_toml(texts, course):
    rows = table_rows(texts["points"])[1:]
    by_file = {r[0].strip("`"): float(r[2]) for r in rows if r[0].endswith(".py`")}
    assert list(by_file) == [f + ".py" for f in registry.FILES]
    for file in registry.FILES:
        assert by_file[file + ".py"] == sum(fn.points for fn in course if fn.file == file)
        listed = re.findall(r"`(\w+)`", next(r[1] for r in rows if r[0] == "`%s.py`" % file))
        assert listed == [fn.name for fn in registry.FUNCTIONS if fn.file == file]
    tests = documents.instructor_tests()
    written = documents.written_questions()
    extra = sum(p for _, p, _ in tests)
    code = float(next(r[2] for r in rows if "code assignment" in r[0]).strip("*"))
    assert code == sum(by_file.values()) + extra
    assert float(next(r[2] for r in rows if "in all" in r[0]).strip("*")) == code + sum(q.points for q in written)
    assert texts["full-marks"].startswith("%s/%s (" % (documents.fmt(code), documents.fmt(code)))


def test_the_points_agree_with_python_m_autograder_list(course):
    """`list` prints the registry's own points; the documents apply course.toml, which here overrides none."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["list"]) == 0
    listed = {line.split()[0]: float(line.split()[2]) for line in out.getvalue().splitlines()
              if line.split()[0] in registry.BY_NAME}
    assert listed == {fn.name: float(fn.points) for fn in registry.FUNCTIONS}
    total = float(out.getvalue().splitlines()[-1].split()[1])
    assert total == sum(fn.points for fn in registry.FUNCTIONS)
    if not config.load().points:
        assert total == sum(fn.points for fn in course)


def test_the_instructor_tests_are_those_of_the_writeups_points_table(course):
    """The write-up's {{POINTS_TABLE}} is filled when it is built (handouts/build.py): it reads the same
    tests, with the same points, and the same code-assignment total."""
    spec = importlib.util.spec_from_file_location("handouts_build", os.path.join(ROOT, "handouts", "build.py"))
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    tests = documents.instructor_tests()
    assert tests and all(p > 0 for _, p, _ in tests)
    assert build.instructor_entries() == [("a hidden test" if hidden else name, p) for name, p, hidden in tests]
    table = build.points_table(build.course_functions(), build.instructor_entries())
    code = sum(fn.points for fn in course) + sum(p for _, p, _ in tests)
    assert "**%s**" % documents.fmt(code) in table.splitlines()[-3]  # "code assignment, in all"


def test_the_written_questions_are_the_notebooks_manual_questions():
    written = documents.written_questions()
    sources = sorted(glob.glob(os.path.join(ROOT, "handouts", "notebooks", "[0-9][0-9]_*.py")))
    titles = sum(len(re.findall(r"\*\*Question [\w.]+ \(written\)\.\*\*", read(p))) for p in sources)
    manual = sum(read(p).count("# manual: true") for p in sources)
    assert len(written) == titles == manual > 0
    assert all(q.points > 0 for q in written)
    assert {q.notebook for q in written} == {os.path.basename(p)[:-3] + ".ipynb" for p in sources}
    assert len({(q.notebook, q.title) for q in written}) == len(written)  # each question told apart


def test_make_student_prints_the_written_outline(monkeypatch, tmp_path, capsys):
    out = tmp_path / "student.zip"

    def build(output, config_path=None):
        with open(output, "wb") as f:
            f.write(b"zip")
        return {}

    monkeypatch.setattr(release, "build", build)
    assert release.main(["-o", str(out)]) == 0
    printed = capsys.readouterr().out
    outline = release.written_outline()
    assert outline in printed and printed.rstrip().endswith(outline.splitlines()[-1].rstrip())
    assert "Homework / Problem Set" in outline
    for number, q in enumerate(documents.written_questions(), 1):
        assert re.search(r"\b%d\. %s, %s +%s points" % (number, re.escape(q.notebook), re.escape(q.title),
                                                           documents.fmt(q.points)), outline), (q, outline)


def test_the_rules_quote_the_grader(texts):
    rules = texts["rules"]
    with open(os.path.join(ROOT, "autograder", "engine", "runner.py"), encoding="utf-8") as f:
        assert '"inputs left unchanged"' in f.read()  # the check's name, as runner.grade adds it
    assert '"inputs left unchanged"' in rules and speed.NAME.startswith("vectorised") and '"vectorised"' in rules
    assert "%gx" % speed.FACTOR in rules and speed.WEIGHT == 0.5 and "half of one check" in rules
    assert "0 points" in outcome.forbidden_message(registry.FUNCTIONS[0], ["x"])
    assert rules.count("**0 points**") == 2  # autograd and the library layers, and nothing else
    for path in (WRITEUP,):
        assert "gets **0 points**, whatever its values" not in read(path)  # the old blanket rule


def test_the_forbidden_table_names_every_loss_and_layer():
    table = forbidden.markdown_table()
    for name in ("F.cross_entropy", "torch.nn.CrossEntropyLoss", "F.nll_loss", "torch.nn.NLLLoss", "F.log_softmax",
                 "F.embedding", "F.embedding_bag", "torch.nn.EmbeddingBag", "F.multi_head_attention_forward",
                 "F.scaled_dot_product_attention", "torch.nn.MultiheadAttention", "torch.nn.utils.clip_grad_norm_"):
        assert "`%s`" % name in table, name


def test_every_document_says_gradescope_has_no_gpu(student_readme):
    for text, where in ((read(WRITEUP), "the write-up"), (student_readme, "the students' README"),
                        (read(os.path.join(ROOT, "docs", "gradescope.md")), "docs/gradescope.md"),
                        (read(README), "README.md")):
        flat = " ".join(text.split())
        assert re.search(r"Gradescope[^.]*(?:have no GPU|has none|have none)", flat), where
    assert "when the grading machine has a GPU, and a check" not in " ".join(read(WRITEUP).split())


def test_course_toml_examples_are_valid_and_name_real_functions(tmp_path):
    """A `toml` block of the docs loads with config.load, names only graded functions, and its
    "# default N" comments are the registry's points."""
    found = 0
    for path in KIT_DOCS:
        for block in re.findall(r"^[ \t]*```toml\n(.*?)^[ \t]*```", read(path), re.S | re.M):
            found += 1
            body = "\n".join(line.strip() for line in block.splitlines())
            file = tmp_path / "course.toml"
            file.write_text(body + "\n", encoding="utf-8")
            config.load(str(file))  # a bad key, an unknown function or a bad value raises, named
            for name, default in re.findall(r"^(\w+) = \S+ +# default (\S+)", body, re.M):
                assert float(default) == registry.BY_NAME[name].points, (rel(path), name, default)
        # and an error quoted in the docs is the one config.load gives
        for section, name, value, message in re.findall(
                r"`error: course\.toml: \[(\w+)\] (\w+) = '([^']*)': ([^`]*)`", " ".join(read(path).split())):
            file = tmp_path / "course.toml"
            file.write_text('[%s]\n%s = "%s"\n' % (section, name, value), encoding="utf-8")
            with pytest.raises(config.ConfigError) as e:
                config.load(str(file))
            assert str(e.value) == "course.toml: [%s] %s = '%s': %s" % (section, name, value, message), rel(path)
            found += 1
    assert found >= 2


# --------------------------------------------------------------------------- filling
def test_fill_writes_block_and_inline_regions_and_is_idempotent(texts):
    text = ("# t\n\n%s\nold\n%s\n\nexpect %sold%s.\n\n%s\n%s\n" % (
        documents.begin("points"), documents.end("points"), documents.begin("full-marks"),
        documents.end("full-marks"), forbidden.MARK_BEGIN, forbidden.MARK_END))
    filled = documents.fill(text, texts)
    assert "old" not in filled and texts["points"] in filled
    assert "expect %s%s%s." % (documents.begin("full-marks"), texts["full-marks"], documents.end("full-marks")) in filled
    assert documents.fill(filled, texts) == filled
    assert forbidden.fill(filled) == filled  # a forbidden region as forbidden.fill writes it


@pytest.mark.parametrize("broken, why", [
    ("<!-- points:begin -->\n", "has no"),
    ("<!-- points:end -->\n", "without"),
    ("<!-- points:begin -->\n<!-- rules:end -->\n", "has no"),
    ("<!-- nonsense:begin -->\n<!-- nonsense:end -->\n", "no region is called"),
    ("a <!-- full-marks:begin -->\nx\n<!-- full-marks:end -->\n", "one line"),
])
def test_fill_refuses_broken_markers(texts, broken, why):
    with pytest.raises(documents.DocumentError, match=why):
        documents.fill(broken, texts)


def test_the_command_rewrites_and_checks(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("x %s%s\n" % (documents.begin("full-marks"), documents.end("full-marks")), encoding="utf-8")
    broken = tmp_path / "broken.md"
    broken.write_text(documents.begin("rules") + "\n", encoding="utf-8")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograder", "documents"] + [str(a) for a in args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    r = run("--check", stale)
    assert r.returncode == 1 and "stale.md" in r.stdout, r.stdout + r.stderr
    assert run(stale).returncode == 0
    assert stale.read_text(encoding="utf-8") == "x %s%s%s\n" % (
        documents.begin("full-marks"), documents.regions()["full-marks"], documents.end("full-marks"))
    assert run("--check", stale).returncode == 0
    r = run("--check", broken)
    assert r.returncode == 2 and "has no" in r.stderr


# --------------------------------------------------------------------------- the commands
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
PREFIXES = ("make ", "python ", ".venv/bin/python ")
TEMPLATE = re.compile(r"<[A-Za-z_][^<>]*>")  # <placeholder>: a template, not run


def commands(path):
    """[(command, where)] of a Markdown file: the lines of its code blocks and its inline code spans
    that start with PREFIXES ("$ " prompts dropped, backslash continuations joined)."""
    text = read(path)
    out = []
    for block in FENCE.finditer(text):
        line_no = text.count("\n", 0, block.start()) + 2
        joined, pending = [], ""
        for k, line in enumerate(block.group(1).splitlines()):
            line = line.strip()
            if pending:
                line, pending = pending + " " + line, ""
            if line.endswith("\\"):
                pending = line[:-1].strip()
                continue
            joined.append((line[2:] if line.startswith("$ ") else line, line_no + k))
        for line, n in joined:
            if line.startswith(PREFIXES):
                out.append((line, "%s:%d" % (rel(path), n)))
    rest = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for span in re.finditer(r"`([^`]+)`", rest):
        code = " ".join(span.group(1).replace("\\|", "|").split())
        if code.startswith(PREFIXES):
            out.append((code, "%s:%d" % (rel(path), rest.count("\n", 0, span.start()) + 1)))
    return out


ALL_COMMANDS = [c for path in RUN for c in commands(path)]


def test_the_documents_have_commands_and_templates():
    assert len(ALL_COMMANDS) > 50
    assert any(TEMPLATE.search(c) for c, _ in ALL_COMMANDS)
    assert "python check.py rnn_layers" in {c for c, _ in ALL_COMMANDS}


def make_targets():
    targets = set()
    for line in read(os.path.join(ROOT, "Makefile")).splitlines():
        m = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
        if m:
            targets.add(m.group(1))
    return targets


def check_make(words):
    targets = [w for w in words if "=" not in w and not w.startswith("-")]
    variables = dict(w.split("=", 1) for w in words if "=" in w)
    problems = ["no make target %r" % t for t in targets if t not in make_targets()]
    if "SUB" in variables and not os.path.exists(os.path.join(ROOT, variables["SUB"])):
        problems.append("SUB=%s does not exist" % variables["SUB"])
    r = subprocess.run(["make", "-n"] + words, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if r.returncode:
        problems.append("make -n %s: %s" % (" ".join(words), r.stderr.strip()[-300:]))
    return problems


class _Parsed(Exception):
    pass


def parse_cli(argv):
    """(exit status, the parsed namespace or None, stderr) of `python -m autograder argv`, parsed by cli.main
    with every verb replaced by a recorder (nothing runs), those of cli.PASSTHROUGH too (their namespace:
    rest, the words after the verb). Would catch: a verb that runs here (the bench did, for 6 minutes)."""
    seen = []
    saved = {name: getattr(cli, name) for name in dir(cli) if name.startswith("cmd_")}
    passthrough = dict(cli.PASSTHROUGH)
    err = io.StringIO()
    try:
        for name in saved:
            setattr(cli, name, lambda args, _name=name: seen.append((_name, args)) or 0)
        for verb, fn in passthrough.items():
            cli.PASSTHROUGH[verb] = lambda rest, _name=fn.__name__: seen.append(
                (_name, argparse.Namespace(rest=list(rest)))) or 0
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = cli.main(list(argv))
            except SystemExit as e:
                status = e.code
    finally:
        for name, fn in saved.items():
            setattr(cli, name, fn)
        cli.PASSTHROUGH.update(passthrough)
    return status, (seen[0] if seen else None), err.getvalue()


def check_bench(rest):
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tools import bench

    saved = bench.machine_info
    err = io.StringIO()

    def parsed():
        raise _Parsed()

    bench.machine_info = parsed
    try:
        with contextlib.redirect_stderr(err):
            bench.main(list(rest))
    except _Parsed:
        return []
    except SystemExit as e:
        return ["bench %s: exit status %s %s" % (" ".join(rest), e.code, err.getvalue()[-300:])]
    finally:
        bench.machine_info = saved
    return ["bench %s: did not stop after parsing" % " ".join(rest)]


def exists(path):
    return os.path.exists(os.path.join(ROOT, path))


def check_autograder(argv):
    status, seen, err = parse_cli(argv)
    if status not in (0, None):
        return ["python -m autograder %s: exit status %s: %s" % (" ".join(argv), status, err.strip()[-300:])]
    if seen is None:
        return []  # --help
    verb, args = seen
    if verb == "cmd_bench":
        return check_bench(args.rest)
    problems = []
    for attr in ("submission", "dir", "config", "instructor_tests"):
        value = getattr(args, attr, None)
        if value and not exists(value):
            problems.append("%s %r does not exist" % (attr, value))
    for d in getattr(args, "dirs", None) or []:
        if not exists(d):
            problems.append("%r does not exist" % d)
    for f in (getattr(args, "files", None) or "").split(","):
        if f and f not in registry.FILES:
            problems.append("--files %s: no such student file" % f)
    for f in (getattr(args, "functions", None) or "").split(","):
        if f and f not in registry.BY_NAME:
            problems.append("--functions %s: no such graded function" % f)
    return problems


def check_module(module, args):
    if importlib.util.find_spec(module) is None:
        return ["no module %s" % module]
    problems = []
    after_option = False
    for word in args:
        if word.startswith("-"):
            after_option = word in ("-o", "--output", "-k", "-m", "--out")
            continue
        if not after_option and (module == "pytest" or "/" in word or word.endswith((".py", ".md"))):
            if not exists(word.split("::")[0]):
                problems.append("%s does not exist" % word)
        after_option = False
    return problems


def check_checker(args):
    """The students' `python check.py [names]` (engine/checker.py's options)."""
    problems, skip = [], False
    for word in args:
        if skip:
            skip = False
        elif word in ("--json", "--budget", "--submission"):
            skip = True
        elif word.startswith("-"):
            if word not in ("--brief", "--help", "-h"):
                problems.append("check.py has no option %s" % word)
        elif word not in registry.FILES and word not in registry.BY_NAME:
            problems.append("check.py %s: neither a student file nor a graded function" % word)
    return problems


def check_export(args):
    """The students' `python export_answers.py NOTEBOOK.ipynb [-o PDF] [--all]`."""
    names = [w for i, w in enumerate(args) if not w.startswith("-") and (i == 0 or args[i - 1] not in ("-o", "--output"))]
    problems = [] if exists(os.path.join("handouts", "student", "export_answers.py")) else ["no export_answers.py"]
    for name in names:
        if not (name.endswith(".ipynb") and exists(os.path.join("handouts", "notebooks", name[:-len(".ipynb")] + ".py"))):
            problems.append("export_answers.py %s: no such notebook" % name)
    return problems


def check_command(command):
    words = shlex.split(command, comments=True)
    if words[0] == "make":
        return check_make(words[1:])
    args = words[1:]
    if args[:2] == ["-m", "autograder"]:
        return check_autograder(args[2:])
    if args[:1] == ["-m"]:
        return check_module(args[1], args[2:])
    if args[:1] == ["-c"]:
        return []
    if args[:1] == ["check.py"]:
        return check_checker(args[1:])
    if args[:1] == ["export_answers.py"]:
        return check_export(args[1:])
    if args and args[0].endswith(".py"):
        return [] if exists(args[0]) else ["%s does not exist" % args[0]]
    return ["not a command test_documents knows how to check: mark it a template (<placeholder>) or teach it"]


def test_every_command_runs_as_written_or_is_a_template():
    problems, checked = [], set()
    for command, where in ALL_COMMANDS:
        if TEMPLATE.search(command) or command in checked:
            continue
        checked.add(command)
        problems += ["%s: `%s`: %s" % (where, command, p) for p in check_command(command)]
    assert len(checked) > 30
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("command, why", [
    ("python check.py gru_layers", "neither"),
    ("make no-such-target", "no make target"),
    ("make grade SUB=path/to/submission", "does not exist"),
    ("python -m autograder grade solutions --files gru_layers", "no such student file"),
    ("python -m autograder grade no/such/folder", "does not exist"),
    ("python -m autograder grade solutions --bogus", "exit status 2"),
    ("python -m autograder bench --bogus", "exit status 2"),
    ("python -m pytest tests/test_nothing.py", "does not exist"),
    ("python export_answers.py 09_none.ipynb", "no such notebook"),
    ("python something", "template"),
])
def test_the_command_checks_catch_copy_paste_traps(command, why):
    assert any(why in p for p in check_command(command)), check_command(command)


# --------------------------------------------------------------------------- the gradient-check example
RIGHT, WRONG = 1e-8, 1e-2  # what the write-up promises: "1e-8 or smaller" when right, "1e-2 or more" when wrong


def example(track="torch"):
    """The write-up's gradient-check example as the track's students read it (its track blocks selected)."""
    sys.path.insert(0, os.path.join(ROOT, "handouts"))
    try:
        import build as writeup_build
    finally:
        sys.path.pop(0)
    text = writeup_build.select_track(read(WRITEUP), track)
    blocks = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M) if "from gradient_check" in b]
    assert len(blocks) == 1
    return blocks[0]


def run_example(folder, track="torch"):
    """{name: error} printed by the write-up's example, run in a student's folder (the files + gradient_check.py)."""
    shutil.copy(os.path.join(ROOT, "assignment", track, "gradient_check.py"), folder)
    with open(os.path.join(folder, "example.py"), "w", encoding="utf-8") as f:
        f.write(example(track))
    r = subprocess.run([sys.executable, "example.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    errors = dict((m.group(1), float(m.group(2))) for m in re.finditer(r"^(\w+) error:\s*(\S+)$", r.stdout, re.M))
    assert set(errors) == {"dx", "dWh", "dscores"}, r.stdout
    return errors


def test_the_writeup_promises_what_the_example_shows():
    text = " ".join(read(WRITEUP).split())
    assert "$10^{-8}$ or smaller when a backward pass is right" in text
    assert "$10^{-2}$ or more when it is wrong" in text


def test_the_gradient_check_example_keeps_its_promise_with_correct_code(tmp_path):
    errors = run_example(copy_solutions(str(tmp_path / "right")))
    assert all(e < RIGHT for e in errors.values()), errors


def test_the_numpy_tracks_example_keeps_its_promises(tmp_path):
    """The NumPy track's write-up shows its own example (NumPy arrays, the NumPy gradient_check.py): right code
    gives 1e-8 or smaller, a wrong tanh derivative 1e-2 or more. Would catch: a NumPy example that does not run."""
    from helpers import NP_SOLUTIONS

    assert "import torch" not in example("numpy") and "import numpy as np" in example("numpy")
    errors = run_example(copy_solutions(str(tmp_path / "right"), NP_SOLUTIONS), "numpy")
    assert all(e < RIGHT for e in errors.values()), errors
    folder = make_variant(str(tmp_path / "wrong"), "rnn_layers.py",
                          [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)")], src=NP_SOLUTIONS)
    errors = run_example(folder, "numpy")
    assert errors["dx"] >= WRONG and errors["dWh"] >= WRONG and errors["dscores"] < RIGHT, errors


def test_the_gradient_check_example_shows_a_wrong_backward_pass(tmp_path):
    from buggy import rnn_layers as bugs  # tests/ is on sys.path (conftest.py)

    by_name = {b.name: b for b in bugs.BUGS}
    for bug, wrong in (("wrong tanh derivative (1 - h)", ("dx", "dWh")), ("dx not divided by N", ("dscores",))):
        folder = make_variant(str(tmp_path / wrong[0]), "rnn_layers.py", by_name[bug].edits)
        errors = run_example(folder)
        assert all(errors[name] >= WRONG for name in wrong), (bug, errors)
        assert all(errors[name] < RIGHT for name in errors if name not in wrong), (bug, errors)
