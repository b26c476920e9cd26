"""What is forbidden is stated once (autograder/engine/forbidden.py, TABLE); here, what is derived from it.

forbidden.TABLE gives the worker's guards (worker.GUARDS, in the grader and, through BOOTSTRAP, in a
worker started fresh), the observer's deny-lists (forbidden.LAYERS, ..., each GradedFunction's
forbidden_ops), the static scan's names (static.py) and the students' table (markdown_table(), in
every Markdown region between forbidden.MARK_BEGIN and MARK_END). These tests check each derived
list against what it must cover, in the torch the kit pins: a guard that install_guards would skip
(a name torch does not have), an operator torch does not know, a scan that misses a name, a stale
table.
"""
import ast
import glob
import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT

from autograder import registry
from autograder.engine import forbidden, speed, static, worker

APIS = [(entry, api) for entry in forbidden.TABLE for api in entry.apis]
OPS = [(entry, op) for entry in forbidden.TABLE for op in entry.ops]
# The dispatch keys whose kernel runs on the CPU (a composite kernel runs on every backend).
CPU_KEYS = ("CPU", "CompositeImplicitAutograd", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional")


def _id(pair):
    return "%s:%s" % (pair[0].key, getattr(pair[1], "path", pair[1]))


def resolve(path):
    """The object torch's dotted path names (importing modules on the way), or AttributeError."""
    parts = path.split(".")
    obj = __import__(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = __import__(".".join(parts[:i + 1]), fromlist=["_"])
    return obj


# --------------------------------------------------------------------------- the observer's deny-lists
def test_the_deny_lists_are_the_tables_operators_with_their_words():
    everywhere = [e for e in forbidden.TABLE if e.where == forbidden.EVERYWHERE]
    assert {e.where for e in forbidden.TABLE} == {forbidden.EVERYWHERE, forbidden.WHERE_LOSS}
    want = {}
    for entry in everywhere:
        for name in [f.rsplit(".", 1)[-1] for f in entry.functions] + list(entry.ops):
            want[name] = "%s (aten::%s)" % (entry.words, name)
    assert forbidden.LAYERS == want
    loss = {op: "%s (aten::%s)" % (e.words, op) for e in forbidden.TABLE if e.where == forbidden.WHERE_LOSS
            for op in e.ops}
    assert forbidden.LAYERS_AND_LOG_SOFTMAX == dict(want, **loss) and loss
    groups = (forbidden.RNN, forbidden.EMBEDDING, forbidden.LOSS, forbidden.ATTENTION, forbidden.CLIPPING)
    assert {k: v for g in groups for k, v in g.items()} == forbidden.LAYERS
    for fn in registry.FUNCTIONS:  # every graded function denies at least every layer
        assert set(forbidden.LAYERS) <= set(fn.forbidden_ops) <= set(forbidden.LAYERS_AND_LOG_SOFTMAX), fn.name


def test_no_deny_list_ever_holds_an_allowed_operator():
    denied = set(forbidden.LAYERS_AND_LOG_SOFTMAX)
    for entry in forbidden.TABLE:
        denied |= set(entry.ops) | {f.rsplit(".", 1)[-1] for f in entry.functions}
    for fn in registry.FUNCTIONS:
        denied |= set(fn.forbidden_ops)
    assert not denied & set(forbidden.ALLOWED)
    # and the allowed names are torch's own: an ALLOWED that names nothing protects nothing
    for name in forbidden.ALLOWED:
        assert (hasattr(torch.ops.aten, name) or hasattr(torch, name) or hasattr(torch.Tensor, name)
                or hasattr(torch.nn.functional, name)), name


def _kernels(op):
    """The CPU-usable dispatch keys (CPU_KEYS) with a kernel for one of the operator's functional
    overloads (an out= overload's generated kernel only calls the functional one)."""
    packet = getattr(torch.ops.aten, op)
    keys = set()
    for overload in packet.overloads():
        schema = getattr(packet, overload)._schema
        if any(a.is_out for a in schema.arguments):
            continue
        name = schema.name + ("" if overload == "default" else "." + overload)
        keys |= {k for k in CPU_KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(name, k)}
    return keys


@pytest.mark.parametrize("entry,op", OPS, ids=[_id(p) for p in OPS])
def test_every_operator_is_one_of_torchs_aten_operators(entry, op):
    """A misspelt operator is never seen: each name is an ATen operator of this torch. It runs on the
    CPU unless forbidden.BACKEND_ONLY says it has kernels only on a GPU backend (then it must not
    have a CPU one either: the note would be wrong)."""
    assert torch.__version__.startswith("2.13"), "BACKEND_ONLY was checked on torch 2.13: check it again"
    assert hasattr(torch.ops.aten, op), "aten::%s is no operator of torch %s" % (op, torch.__version__)
    assert worker.op_name(getattr(torch.ops.aten, op)) == op
    if op in forbidden.BACKEND_ONLY:
        assert not _kernels(op), "aten::%s runs on the CPU: not %s only" % (op, forbidden.BACKEND_ONLY[op])
    else:
        assert _kernels(op), "aten::%s has no CPU kernel: say so in forbidden.BACKEND_ONLY" % op


def test_backend_only_operators_are_in_the_table():
    assert set(forbidden.BACKEND_ONLY) <= {op for _, op in OPS}
    assert set(forbidden.BACKEND_ONLY.values()) <= {"CUDA", "CUDA (cuDNN)", "ROCm (MIOpen)", "MPS"}


@pytest.mark.parametrize("entry,path", [(e, f) for e in forbidden.TABLE for f in e.functions],
                         ids=[_id((e, f)) for e in forbidden.TABLE for f in e.functions])
def test_every_function_is_torchs_and_goes_by_its_name(entry, path):
    """Entry.functions: torch's Python functions the observer sees under their own name, no ATen
    operator's (those belong in ops)."""
    fn = resolve(path)
    name = path.rsplit(".", 1)[-1]
    assert callable(fn) and worker.op_name(fn) == name, path
    assert not hasattr(torch.ops.aten, name), "aten::%s is an operator: put it in ops" % name
    assert name in entry.deny


def test_the_observer_sees_a_function_by_the_name_it_is_denied_under():
    """F.cross_entropy reaches the observer as itself (its ATen operators come later): the deny key is
    its op_name. Run in this process: an Observer used with `with` patches nothing (speed.py's use)."""
    pop = torch._C._pop_torch_function_stack
    record = []
    s, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with worker.Observer(forbidden.LAYERS, record):
        torch.nn.functional.cross_entropy(s, y)
        torch.tanh(s)
    assert record == ["torch's built-in cross-entropy / NLL loss (aten::cross_entropy)"]
    assert torch._C._pop_torch_function_stack is pop


# --------------------------------------------------------------------------- the worker's guards
def test_the_worker_guards_are_the_tables():
    want = []
    for entry, api in APIS:
        if api.guard:
            want.append((api.path, "__init__", api.label) if api.name[0].isupper() else (api.owner, api.name, api.label))
    assert worker.GUARDS == forbidden.GUARDS == want
    assert len(set(g[:2] for g in want)) == len(want)  # no entry point twice


def test_a_fresh_worker_gets_the_same_guards_through_its_bootstrap():
    """sandbox.py starts a fresh interpreter with worker.BOOTSTRAP and sends it worker.py as text: the
    guards it installs are the literal in BOOTSTRAP, which must be forbidden.GUARDS."""
    tree = ast.parse(worker.BOOTSTRAP)
    sent = [ast.literal_eval(node.values[node.keys.index(key)]) for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for key in node.keys if isinstance(key, ast.Constant) and key.value == "_SENT_GUARDS"]
    assert sent and [tuple(g) for g in sent[0]] == forbidden.GUARDS
    with open(worker.__file__, encoding="utf-8") as f:
        source = f.read()
    libraries = [ast.literal_eval(node.values[node.keys.index(key)]) for node in ast.walk(tree)
                 if isinstance(node, ast.Dict) for key in node.keys
                 if isinstance(key, ast.Constant) and key.value == "_SENT_LIBRARIES"]
    assert libraries and tuple(libraries[0]) == forbidden.AUTOGRAD_LIBRARIES
    namespace = {"__name__": "_ag_worker", "_SENT_GUARDS": sent[0], "_SENT_LIBRARIES": libraries[0]}
    exec(compile(source, "<grader:worker>", "exec"), namespace)  # defines only: installs nothing
    assert namespace["GUARDS"] == forbidden.GUARDS and namespace["AUTOGRAD_LIBRARIES"] == forbidden.AUTOGRAD_LIBRARIES
    with pytest.raises(ImportError):  # without the literal it has nothing to go by
        exec(compile(source, "<grader:worker>", "exec"), {"__name__": "_ag_worker"})


GUARD_PROBE = r"""
import json, sys
sys.path.insert(0, %(root)r)
from autograder.engine import forbidden, worker
worker.install_guards()
out = {"count": len(worker._guards), "apis": {}}
for entry in forbidden.TABLE:
    for api in entry.apis:
        if not api.guard:
            continue
        owner, attr = (api.path, "__init__") if api.name[0].isupper() else (api.owner, api.name)
        parts = owner.split(".")
        obj = __import__(parts[0])
        for i, part in enumerate(parts[1:], start=1):
            obj = getattr(obj, part, None) or __import__(".".join(parts[:i + 1]), fromlist=["_"])
        found = [label for o, a, g, label in worker._guards if o is obj and a == attr and getattr(obj, attr) is g]
        out["apis"][api.path] = found
print(json.dumps(out))
"""


def test_every_guarded_api_is_guarded_in_this_torch():
    """install_guards skips an entry point torch does not have, silently: here none is skipped, and each
    guarded name (a class: its __init__) is replaced by a guard recording the table's label. (In a
    subprocess: the guards patch torch for good.)"""
    r = subprocess.run([sys.executable, "-c", GUARD_PROBE % {"root": ROOT}], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["count"] == len(forbidden.GUARDS) + 1  # and autograd's engine
    for entry, api in APIS:
        if api.guard:
            assert got["apis"][api.path] == [api.label], (api.path, got["apis"][api.path])


# --------------------------------------------------------------------------- the static scan
def _written(api):
    """The ways a student writes the api's name: in full and as the table shows it."""
    if api.scan == forbidden.KEYWORD:
        return ["y = torch.zeros(2, %s)" % api.shown]
    forms = {api.path, api.shown}
    return ["y = %s" % form for form in sorted(forms)]


def _scan(line):
    head = "import torch\nimport importlib\nimport torch.nn.functional as F\n"
    return [label for _, _, label in static.findings(head + line + "\n")]


@pytest.mark.parametrize("entry,api", APIS, ids=[_id(p) for p in APIS])
def test_the_static_scan_finds_every_name_of_the_table(entry, api):
    """Each name a student would write is shown to the student, with the table's words for it; a name
    allowed outside some functions (log-softmax) never is."""
    for line in _written(api):
        found = _scan(line)
        if entry.where != forbidden.EVERYWHERE:
            assert found == [], (line, found)
        elif api.scan == forbidden.NAME:  # by its last part: the first api of that name says what it is
            assert static.FORBIDDEN_NAMES[api.name] in found, (line, found)
            assert static.FORBIDDEN_NAMES[api.name] == next(
                a.scanned_as for _, a in APIS if a.scan == forbidden.NAME and a.name == api.name)
        elif api.scan == forbidden.KEYWORD:
            assert api.scanned_as in found, (line, found)
        elif api.scan == forbidden.OWNED:
            assert found == [static.QUALIFIED[api.name][1]] and api.scanned_as in found[0], (line, found)
        else:  # its own name is a common word: found under its owner (torch.autograd.grad: autograd)
            assert found, line
    if api.scan == forbidden.OWNED:
        assert _scan("y = self.%s" % api.name) == []  # a student's own attribute of that name
        assert _scan("from %s import %s" % (api.owner, api.name)) == [api.scanned_as]
    if api.scan == forbidden.NAME and not api.module:  # (one finding per import: a forbidden module's first)
        found = _scan("from %s import %s" % (api.owner, api.name))
        module = [label for m, label in static.MODULES.items() if (api.owner + ".").startswith(m + ".")]
        assert found == (module or [static.FORBIDDEN_NAMES[api.name]]), found
    if api.module:
        assert _scan("import %s" % api.path) == [api.scanned_as]
        assert _scan("import %s.anything as m" % api.path) == [api.scanned_as]
        assert _scan("from %s import anything" % api.path) == [api.scanned_as]


def test_the_static_scans_names_are_the_tables():
    everywhere = [api for entry, api in APIS if entry.where == forbidden.EVERYWHERE]
    assert {a.name for a in everywhere if a.scan == forbidden.NAME} == set(static.FORBIDDEN_NAMES)
    assert {a.name for a in everywhere if a.scan == forbidden.OWNED} == set(static.QUALIFIED)
    assert {a.path for a in everywhere if a.scan == forbidden.KEYWORD} == set(static.KEYWORDS)
    assert {a.path for a in everywhere if a.module} == set(static.MODULES)
    # what is scanned is denied everywhere: no scan of a name that some graded function may use
    assert not [a for entry, a in APIS if entry.where != forbidden.EVERYWHERE and a.scan]
    assert _scan("y = torch.zeros(2, requires_grad=False)") == []
    assert _scan("import torch.functional") == []  # not torch.func


# --------------------------------------------------------------------------- the students' table
def test_the_markdown_table_lists_every_entry_and_name():
    table = forbidden.markdown_table()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(forbidden.TABLE)
    assert len({row.count("|") for row in rows}) == 1  # no cell holds a | of its own
    for entry, row in zip(forbidden.TABLE, rows[2:]):
        assert row.startswith("| %s |" % entry.words) and entry.instead in row
        for api in entry.apis:
            assert "`%s`" % api.shown in row, (api.path, row)
    assert forbidden.NOTE in table


def test_fill_puts_the_table_between_the_markers_and_only_there(tmp_path):
    text = "# Title\n\nbefore\n%s\nold table\n%s\nafter\n" % (forbidden.MARK_BEGIN, forbidden.MARK_END)
    filled = forbidden.fill(text)
    assert filled.startswith("# Title\n\nbefore\n" + forbidden.MARK_BEGIN + "\n\n")
    assert filled.endswith("\n\n" + forbidden.MARK_END + "\nafter\n")
    assert forbidden.markdown_table() in filled and "old table" not in filled
    assert forbidden.fill(filled) == filled
    assert forbidden.fill("no markers\n") == "no markers\n"
    twice = text + text
    assert forbidden.fill(twice).count(forbidden.markdown_table()) == 2
    for broken in (forbidden.MARK_BEGIN + "\n", forbidden.MARK_END + "\n" + forbidden.MARK_BEGIN + "\n",
                   (forbidden.MARK_BEGIN + "\n") * 2 + forbidden.MARK_END + "\n"):
        with pytest.raises(ValueError):
            forbidden.fill(broken)


def test_the_command_rewrites_and_checks_files(tmp_path):
    stale = tmp_path / "stale.md"
    stale.write_text("x\n%s\n%s\n" % (forbidden.MARK_BEGIN, forbidden.MARK_END), encoding="utf-8")
    plain = tmp_path / "plain.md"
    plain.write_text("nothing to fill\n", encoding="utf-8")
    broken = tmp_path / "broken.md"
    broken.write_text(forbidden.MARK_BEGIN + "\n", encoding="utf-8")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograder.engine.forbidden"] + [str(a) for a in args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    r = run("--check", stale, plain)
    assert r.returncode == 1 and str(stale) in r.stdout and str(plain) not in r.stdout, r.stdout + r.stderr
    assert forbidden.markdown_table() not in stale.read_text(encoding="utf-8")  # --check writes nothing
    assert run(stale, plain).returncode == 0
    assert forbidden.markdown_table() in stale.read_text(encoding="utf-8")
    assert plain.read_text(encoding="utf-8") == "nothing to fill\n"
    assert run("--check", stale, plain).returncode == 0
    r = run("--check", broken)
    assert r.returncode == 2 and "pair" in r.stderr
    r = run()
    assert r.returncode == 0 and r.stdout == forbidden.markdown_table()


MARKDOWN = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md"),
                                                                   os.path.join(ROOT, "handouts", "writeup.md")])
WITH_REGION = [p for p in MARKDOWN if os.path.isfile(p) and forbidden.MARK_BEGIN in open(p, encoding="utf-8").read()]


def test_the_write_up_has_a_region():
    assert os.path.join(ROOT, "handouts", "writeup.md") in WITH_REGION


@pytest.mark.parametrize("path", WITH_REGION, ids=[os.path.relpath(p, ROOT) for p in WITH_REGION])
def test_the_kits_markdown_regions_are_up_to_date(path):
    assert not forbidden.update(path, check=True), (
        "%s: its table of what is forbidden is out of date: python -m autograder.engine.forbidden %s"
        % (os.path.relpath(path, ROOT), os.path.relpath(path, ROOT)))


# --------------------------------------------------------------------------- one observer
def test_speed_runs_the_reference_under_the_workers_own_observer():
    """The vectorisation check's reference runs under worker.Observer (no copy of it), and no module
    of the kit imports a private name of the worker's."""
    assert speed.Observer is worker.Observer
    assert not hasattr(speed, "_Observed")
    for path in glob.glob(os.path.join(ROOT, "autograder", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "worker":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path, private)


def test_the_forbidden_table_is_plain_data():
    """forbidden.py imports nothing from the package, nor torch: the worker's bootstrap, the public
    checker and the release read it as it is."""
    with open(forbidden.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, "a relative import"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported


def test_op_name_strips_namespace_and_overload():
    assert worker.op_name(torch.ops.aten.lstm.input) == "lstm"
    assert worker.op_name(torch._VF.lstm) == "lstm"
    assert worker.op_name(torch.nn.functional.embedding) == "embedding"


TAMPER = r"""
import sys, torch
sys.path.insert(0, %(root)r)
from autograder.engine import forbidden, worker
observed = worker.install_observer(torch)
W, x = torch.randn(5, 3), torch.tensor([1, 2])
def quiet(W, x):  # empties the observer's deny-list, and leaves it so
    torch._C._get_function_stack_at(0).deny = {}
    return torch.embedding(W, x)
def elsewhere(W, x):  # records into a list of its own
    torch._C._get_function_stack_at(0).record = []
    return torch.embedding(W, x)
for fn in (quiet, elsewhere):
    del worker._violations[:]
    observed(fn, (W, x), forbidden.LAYERS)
    print(fn.__name__, any("grader's operator observer" in v for v in worker._violations))
"""


def test_a_change_to_the_workers_observer_is_itself_a_violation():
    """Its deny-list and its record are attributes (the student's code can reach the observer on torch's
    stack): one left changed when the call returns is recorded. (In a subprocess: it patches torch.)"""
    r = subprocess.run([sys.executable, "-c", TAMPER % {"root": ROOT}], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["quiet", "True", "elsewhere", "True"], r.stdout
