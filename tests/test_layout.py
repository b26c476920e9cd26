"""The layout's rules, read from the source (no module is imported to check them):

- autograder/engine/ imports nothing outside itself but the standard library, torch, numpy and the
  optional pyseccomp: the student release ships it as it is (verbs/release.py), so an import of the kit
  there would break every student's check.py;
- the import graph of autograder/ (imports inside functions included) has no cycle;
- no module imports another module's private name (`from x import _y`, or `x._y` on an imported module);
- every module opens with a docstring that says why it exists.
"""
import ast
import os
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "autograder")


def modules():
    """{dotted name: path} of every module of the package (a package's own is its __init__)."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        if "__pycache__" in folder:
            continue
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].split(os.sep)
                out[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = os.path.join(folder, f)
    return out


MODULES = modules()


def parse(name):
    with open(MODULES[name], encoding="utf-8") as f:
        return ast.parse(f.read(), MODULES[name])


def is_package(name):
    return MODULES[name].endswith("__init__.py")


def resolve(name, node):
    """The modules of the kit that the import `node` in module `name` names (absolute dotted names)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "autograder"]
    if node.level:
        base = name.split(".") if is_package(name) else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module
    if target.split(".")[0] != "autograder":
        return []
    out = [target]
    for a in node.names:  # `from . import x`: x may be a module itself
        if target + "." + a.name in MODULES:
            out.append(target + "." + a.name)
    return out


def imports(name):
    """{module of the kit} that `name` imports anywhere in its source (inside functions too)."""
    found = set()
    for node in ast.walk(parse(name)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(m for m in resolve(name, node) if m in MODULES and m != name)
    return found


def test_the_package_has_the_layout_the_readme_describes():
    for name in ("autograder.paths", "autograder.cli", "autograder.config", "autograder.registry",
                 "autograder.engine", "autograder.engine.runner", "autograder.engine.plans",
                 "autograder.engine.checker", "autograder.verbs.grade", "autograder.verbs.release",
                 "autograder.verbs.batch.run", "autograder.parts.cases"):
        assert name in MODULES, name
    assert "autograder.bench" not in MODULES and os.path.isfile(os.path.join(ROOT, "tools", "bench.py"))


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("autograder.engine")))
def test_the_engine_imports_nothing_outside_itself(name):
    """The rule the release applies (release.import_problems), on every engine module; the function
    itself is tested on bad sources below."""
    from autograder.verbs import release

    with open(MODULES[name], encoding="utf-8") as f:
        assert release.import_problems(name, f.read()) == []


def test_the_release_agrees_that_the_engine_ships_as_it_is():
    from autograder.verbs import release

    shipped = release.engine_modules()
    assert set(shipped) == {n.rsplit(".", 1)[1] if n != "autograder.engine" else "__init__"
                            for n in MODULES if n.startswith("autograder.engine")}
    bad = "from .. import registry\nimport autograder.paths\nimport scipy\nfrom ..paths import KIT_ROOT\n"
    assert len(release.import_problems("x", bad)) == 4
    good = "import os\nimport torch\nfrom . import wire\nfrom .spec import CACHE\ntry:\n    import pyseccomp\nexcept ImportError:\n    pass\n"
    assert release.import_problems("x", good) == []


def find_cycle(graph):
    """One cycle of graph ({node: set of nodes}) as a list, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    graph = {name: imports(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
    # the graph was read (not empty): the grading verb reaches the engine's loop, lazily imported or not
    assert "autograder.engine.runner" in graph["autograder.verbs.grade"]
    assert {"autograder.engine.sandbox", "autograder.engine.speed"} <= graph["autograder.engine.runner"]


def test_no_private_name_crosses_modules():
    problems = []
    for name in MODULES:
        tree = parse(name)
        aliases = {}  # local name -> module of the kit
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = resolve(name, node)
                for a in node.names:
                    full = "%s.%s" % (targets[0], a.name) if targets else None
                    if full in MODULES:
                        aliases[a.asname or a.name] = full
                    elif targets and a.name.startswith("_") and not a.name.startswith("__"):
                        problems.append("%s imports %s from %s" % (name, a.name, targets[0]))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                problems.append("%s uses %s.%s" % (name, aliases[node.value.id], node.attr))
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_why_it_exists(name):
    doc = ast.get_docstring(parse(name))
    assert doc and len(doc.split()) >= 5, "%s has no docstring worth the name" % name
