"""Static check of a student file: where the source mentions a forbidden API (AST only).

The worker's run-time guards decide the score (a function that calls a forbidden API gets zero);
this scan only reports where the source names one, so that a student sees the line, and an
instructor sees attempts that dodged the run-time guards (importlib.reload of torch, ...). What
counts as forbidden is forbidden.TABLE's, as the guards' and the observer's deny-lists are.
"""
import ast
import bisect

from . import forbidden

# attribute or imported name -> what to call it (LSTM, cross_entropy, backward, reload, ...)
FORBIDDEN_NAMES = forbidden.SCAN_NAMES
# names forbidden only as an attribute of these bases (F.embedding, torch.func.grad, ...): name -> (bases, label)
QUALIFIED = forbidden.SCAN_OWNED
# an OWNED name imported from its owner (from torch import lstm): full path -> label
QUALIFIED_IMPORTS = forbidden.SCAN_IMPORTS
# keyword arguments, unless the constant False (requires_grad=True) -> label
KEYWORDS = forbidden.SCAN_KEYWORDS
# modules whose import (or a submodule's), or an import from them, is forbidden -> label
MODULES = forbidden.SCAN_MODULES


# Ways to reach an operator by another name, or to run code the scan cannot read: not forbidden in
# themselves (the run-time observer judges what runs), so they are shown to instructors only.
REVIEW_ATTRS = {"_VF": "torch._VF", "ops": "torch.ops", "_C": "torch._C"}
REVIEW_CALLS = {"__import__": "__import__", "eval": "eval", "exec": "exec", "compile": "compile"}

# The observer lives in the worker beside the student's code. These reach the worker's own objects
# (gc, frames, closures, native memory) or run code where the observer does not look (threads, other
# processes, signal handlers): an instructor should read every line that uses one. An import of one of
# these modules (or of a submodule) is reported, whether by `import`, `from ... import`, `__import__`
# or `importlib.import_module` with a constant name.
REVIEW_MODULES = {
    "importlib": "importlib", "builtins": "builtins (eval, exec and __import__ by another name)",
    "gc": "gc (every object in the worker)", "inspect": "inspect (frames)", "traceback": "traceback (frames)",
    "ctypes": "ctypes (native code and memory)", "_ctypes": "ctypes (native code and memory)",
    "cffi": "cffi (native code and memory)", "torch.utils.cpp_extension": "torch.utils.cpp_extension (native code)",
    "threading": "threading", "_thread": "_thread (threads)", "concurrent.futures": "concurrent.futures",
    "asyncio": "asyncio (threads, processes)", "multiprocessing": "multiprocessing",
    "_multiprocessing": "multiprocessing", "torch.multiprocessing": "torch.multiprocessing",
    "subprocess": "subprocess", "_posixsubprocess": "subprocess", "pty": "pty (fork)",
    "posix": "posix (os.fork and friends)", "signal": "signal (handlers run outside the call)",
    "_signal": "signal (handlers run outside the call)", "pdb": "pdb (frames)", "bdb": "bdb (frames)",
}
# Attributes that hand over another piece of code's frames, variables or internals, on any object.
FRAME_ATTRS = ("f_back", "f_locals", "f_globals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
               "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "__traceback__")
OBJECT_ATTRS = ("__closure__", "cell_contents", "__globals__", "__code__", "__defaults__", "__kwdefaults__",
                "__self__", "__func__", "__wrapped__", "__subclasses__", "__bases__", "__base__", "__mro__")
REVIEW_OBJECT_ATTRS = dict([(a, "frame access (.%s)" % a) for a in FRAME_ATTRS]
                           + [(a, "another object's internals (.%s)" % a) for a in OBJECT_ATTRS]
                           + [("__builtins__", "__builtins__"), ("__import__", "__import__")]
                           # gc and inspect calls that hand over other code's objects and frames
                           + [(a, "gc.%s (every object in the worker)" % a)
                              for a in ("get_objects", "get_referrers", "get_referents")]
                           + [("currentframe", "inspect.currentframe (frames)")])
# torch's own handles on the grader's operator observers (its mode stacks), and TorchScript, whose operators run
# where they do not look: a student needs none of them.
REVIEW_OBJECT_ATTRS.update({a: "torch's mode stack (%s: the grader's operator observer)" % a for a in (
    "_get_current_function_mode", "_get_current_function_mode_stack", "_get_current_dispatch_mode",
    "_get_current_dispatch_mode_stack", "_pop_mode", "_pop_mode_temporarily", "_disable_current_modes",
    "_push_mode", "handle_torch_function", "redispatch", "_op_dk")})
REVIEW_OBJECT_ATTRS.update({a: "TorchScript (%s: operators the grader's observer does not see)" % a
                            for a in ("jit", "CompilationUnit")})
# sys: frames and tracing of any code (on any object: threading.settrace too); on sys only, the
# worker's own modules and import machinery, and tracebacks (whose frames are one attribute away).
SYS_ANY = ("_getframe", "_current_frames", "_current_exceptions", "settrace", "setprofile")
SYS_ONLY = ("modules", "meta_path", "path_hooks", "addaudithook", "exc_info", "last_traceback")
# os (or posix): a new process, another program, a signal. The distinctive names are reported on any
# object (os under a name the scan cannot follow); the common words only on os and posix.
_EXEC = ["exec" + s for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")]
_SPAWN = ["spawn" + s for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")]
OS_ANY = tuple(["fork", "forkpty", "posix_spawn", "posix_spawnp", "register_at_fork", "killpg"] + _EXEC + _SPAWN)
OS_ONLY = ("system", "popen", "kill", "spawn", "setsid", "setpgid", "setpgrp")
OS_MODULES = ("os", "posix")
# `from X import *` of these hands over the names above without naming them
STAR_MODULES = ("os", "posix", "sys", "builtins")
_CHAIN_LIMIT = 64  # a.b.c...: longer chains are not resolved (keeps the scan linear)
TOO_DEEP = "the file is too deeply nested to scan"


def review_findings(source):
    """[(line, label)] for what an instructor may want to read.

    torch._VF, torch.ops, torch._C, getattr on torch with a computed name, eval, exec, compile,
    __import__ and importlib (as before); imports of the modules in REVIEW_MODULES (gc, inspect,
    ctypes, threading, multiprocessing, subprocess, signal, ...) by any route with a constant name;
    frame and object internals (.f_back, .tb_frame, .__globals__, .__subclasses__, ...), directly or
    through getattr with a constant name; sys._getframe, sys.settrace, sys.modules, ...; os.fork,
    os.system, os.exec*, os.spawn*, os.kill, ...; and `from os import *` and its like. Never raises:
    a file too deeply nested to parse gives one line saying so.
    """
    try:
        tree = ast.parse(source)
    except RecursionError:
        return [(1, TOO_DEEP)]
    except (SyntaxError, ValueError, TypeError, OverflowError, MemoryError):
        return []
    try:
        return _review(tree)
    except RecursionError:
        return [(1, TOO_DEEP)]
    except MemoryError:
        return [(1, "the file is too large to scan")]
    except Exception as e:  # noqa: BLE001 - a fault of the scan must not cost the grading
        return [(1, "the static scan stopped (%s): read the whole file" % type(e).__name__)]


def _review(tree):
    nodes = list(ast.walk(tree))  # ast.walk is iterative: no recursion on deep trees
    aliases = {}  # name bound in the file -> dotted module or object it stands for
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = node.module + "." + a.name
    for node in nodes:  # o = os, o = __import__("os"), m = importlib.import_module("gc"): one renaming
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = _module_of(node.value, aliases)
            if target and target.split(".")[0] in _TRACKED and target != node.targets[0].id:
                aliases[node.targets[0].id] = target

    modules = {a.asname or a.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for a in node.names}
    out, seen_strings = [], set()

    def add(node, label):
        if label:
            out.append((getattr(node, "lineno", None) or 1, label))

    for node in nodes:
        if isinstance(node, ast.Attribute):
            attr = node.attr
            base = _module_of(node.value, aliases) if attr in _NEEDS_BASE else None
            add(node, _attr_label(attr, base))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in REVIEW_CALLS:  # called, or passed on under another name
                add(node, REVIEW_CALLS[node.id])
            elif node.id == "__builtins__":
                add(node, "__builtins__")
        elif isinstance(node, ast.Import):
            hits = [a.name for a in node.names if _old_hit(a.name) or _review_module(a.name)]
            if hits:
                add(node, "an import of %s" % ", ".join(hits))
        elif isinstance(node, ast.ImportFrom):
            _review_import_from(node, add)
        elif isinstance(node, ast.Call):
            _review_call(node, aliases, add, seen_strings)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):  # os.write = f: replaced
            for target in (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]):
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and \
                        target.value.id in modules:
                    add(target, "a change to %s.%s (the grader's worker calls it too)"
                        % (aliases.get(target.value.id, target.value.id), target.attr))
    for node in nodes:  # getattr(frame, "f_back") under another name, operator.attrgetter("f_locals"), ...
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _STRING_NAMES
                and id(node) not in seen_strings):
            add(node, _attr_label(node.value, None))
    return sorted(set(out))


def _review_import_from(node, add):
    module = node.module if not node.level else None  # relative imports are the student's own files
    hits = []
    if module and (_old_hit(module) or _review_module(module)):
        hits.append(module)
    for a in node.names:
        if a.name == "*":
            if module and (module in STAR_MODULES or hits):
                add(node, "from %s import *" % module)
            continue
        full = "%s.%s" % (module, a.name) if module else a.name
        if module and not hits and (_old_hit(full) or _review_module(full)):
            hits.append(full)
        elif (_old_hit(a.name) or a.name == "importlib") and a.name not in hits:  # as before
            hits.append(a.name)
        elif full not in hits:
            add(node, _attr_label(a.name, module))  # from os import fork, from sys import _getframe
    if hits:
        add(node, "an import of %s" % ", ".join(hits))


def _review_call(node, aliases, add, seen_strings):
    imported = _import_call(node, aliases)
    if imported:
        kind, name = imported
        if name and (_review_module(name) or _old_hit(name)):
            add(node, "%s of %s" % (kind, name))
        elif kind != "__import__":  # __import__ itself is reported by name
            add(node, kind)
    func, args = node.func, node.args
    if isinstance(func, ast.Name) and func.id == "getattr" and len(args) >= 2 and not isinstance(args[1], ast.Constant):
        base = _module_of(args[0], aliases)
        if base and base.split(".")[0] == "torch":
            add(node, "getattr on torch with a computed name")
    # getattr(obj, "f_back"), getattr(os, "fork"), obj.__getattribute__("f_locals"), ...
    target = name = None
    if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr", "setattr", "delattr") and len(args) >= 2:
        target, name = args[0], args[1]
    elif isinstance(func, ast.Attribute) and func.attr == "__getattribute__" and args:
        target, name = (args[0], args[1]) if len(args) >= 2 else (func.value, args[0])
    if isinstance(name, ast.Constant) and isinstance(name.value, str):
        label = _attr_label(name.value, _module_of(target, aliases) if name.value in _NEEDS_BASE else None)
        if label:
            seen_strings.add(id(name))
            add(node, label)


def _attr_label(attr, base):
    """What obj.<attr> is worth an instructor's look as, given the dotted module obj stands for (or None)."""
    root = base.split(".")[0] if base else None
    if attr in REVIEW_ATTRS and root == "torch":
        return REVIEW_ATTRS[attr]
    if attr in REVIEW_OBJECT_ATTRS:
        return REVIEW_OBJECT_ATTRS[attr]
    if attr in SYS_ANY:
        return "sys.%s (frames and tracing)" % attr if base == "sys" else "frames and tracing (.%s)" % attr
    if attr in SYS_ONLY and base == "sys":
        return "sys.%s" % attr
    if attr in OS_ANY or (attr in OS_ONLY and base in OS_MODULES):
        return "%s.%s (processes)" % (base, attr) if base in OS_MODULES else "processes (.%s)" % attr
    if base and attr in _MODULE_TAILS:
        module = _review_module(base + "." + attr)
        if module:
            return REVIEW_MODULES[module]
    return None


def _import_call(node, aliases):
    """(how, module name or None) when node calls __import__ or importlib.import_module, else None."""
    if not isinstance(node, ast.Call):
        return None
    func = _module_of(node.func, aliases, calls=False)
    if func == "__import__" or (func or "").endswith(".__import__"):
        kind = "__import__"
    elif func == "importlib.import_module":
        kind = "importlib.import_module"
    else:
        return None
    first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
    name = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return kind, name


def _module_of(node, aliases, calls=True):
    """The dotted name an expression stands for (os.path, importlib.import_module, ...) or None.

    Follows import aliases (import os as o), and __import__ / import_module calls with a constant name
    at the root; iterative and bounded (chains longer than _CHAIN_LIMIT are not resolved)."""
    parts = []
    while isinstance(node, ast.Attribute):
        if len(parts) >= _CHAIN_LIMIT:
            return None
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        root = aliases.get(node.id, node.id)
    elif calls and isinstance(node, ast.Call):
        imported = _import_call(node, aliases)
        if not imported or not imported[1]:
            return None
        kind, root = imported
        fromlist = len(node.args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
        if kind == "__import__" and not fromlist:
            root = root.split(".")[0]  # __import__("os.path") returns os
    else:
        return None
    return ".".join([root] + parts[::-1])


def _review_module(name):
    """The REVIEW_MODULES entry that `name` is or lies under, or None."""
    for module in REVIEW_MODULES:
        if name == module or name.startswith(module + "."):
            return module
    return None


def _old_hit(name):
    return name.startswith(("torch._C", "torch._VF", "torch.ops"))


_TRACKED = {m.split(".")[0] for m in REVIEW_MODULES} | {"os", "sys", "torch", "__builtins__"}
_MODULE_TAILS = {m.rsplit(".", 1)[1] for m in REVIEW_MODULES if "." in m}
_NEEDS_BASE = set(REVIEW_ATTRS) | set(SYS_ANY) | set(SYS_ONLY) | set(OS_ONLY) | set(OS_ANY) | _MODULE_TAILS
_STRING_NAMES = set(REVIEW_OBJECT_ATTRS) | set(SYS_ANY) | set(OS_ANY)


def attach(statuses, results, where=None):
    """Static findings of every vetted file: (notes, review). where: {function: the module that holds it}
    (submission.relocate; default: its registry file).

    Forbidden names go to their function's FunctionResult.static (module-level ones become
    notes); review_findings become instructor-only review lines.
    """
    notes, review = [], []
    by_file = {}
    for fr in results.values():
        by_file.setdefault((where or {}).get(fr.fn.name, fr.fn.file), {})[fr.fn.name] = fr
    for module, st in statuses.items():
        if st.error or not st.path:
            continue
        with open(st.path, encoding="utf-8-sig") as f:  # as submission.vet reads it
            source = f.read()
        for func, line, label in findings(source):
            text = "%s.py line %d names %s, which this assignment does not allow" % (module, line, label)
            if func in by_file.get(module, {}):
                by_file[module][func].static.append(text)
            else:
                notes.append("static check: " + text)
        review += ["%s.py line %d: %s" % (module, line, label) for line, label in review_findings(source)]
    return notes, review


def torch_in_numpy_track(statuses):
    """Notes for the NumPy track: every vetted file that imports torch (a submission written for the torch
    track, or NumPy code borrowing a torch operator), which its functions may not use there."""
    notes = []
    for module, st in sorted(statuses.items()):
        if st.error or not st.path:
            continue
        with open(st.path, encoding="utf-8-sig") as f:  # as submission.vet reads it
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] == "torch" for n in names):
                notes.append("%s.py imports torch (line %d), but this course's track is NumPy: its functions get "
                             "NumPy arrays, must return NumPy arrays, and may run no torch operator"
                             % (module, node.lineno))
                break
    return notes


def _base_name(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_label(name):
    """The label of the forbidden module `name` is or lies under (torch.autograd.functional), or None."""
    for module, label in MODULES.items():
        if name == module or name.startswith(module + "."):
            return label
    return None


def findings(source):
    """[(function name or None, line, label)] for every mention of a forbidden API."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    nodes = list(ast.walk(tree))
    spans = [(n.lineno, n.end_lineno, n.name) for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    out = []
    for node in nodes:
        label = None
        labels = []  # an import statement may name several forbidden APIs: each is reported
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_NAMES:
                label = FORBIDDEN_NAMES[node.attr]
            elif node.attr in QUALIFIED:
                bases, text = QUALIFIED[node.attr]
                parent = node.value.attr if isinstance(node.value, ast.Attribute) else _base_name(node.value)
                if parent in bases:
                    label = text
        elif isinstance(node, ast.keyword) and node.arg in KEYWORDS:
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                label = KEYWORDS[node.arg]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES:
                    labels.append(FORBIDDEN_NAMES[alias.name])
                elif "%s.%s" % (node.module, alias.name) in QUALIFIED_IMPORTS:
                    labels.append(QUALIFIED_IMPORTS["%s.%s" % (node.module, alias.name)])
            label = _module_label(node.module)  # a forbidden module says it all
            labels = [] if label else labels
        elif isinstance(node, ast.Import):
            labels = [_module_label(alias.name) for alias in node.names]
        if hasattr(node, "lineno"):
            out += [(node.lineno, text) for text in [label] + labels if text]
    # each line's innermost function (latest start): spans in order, later ones overwrite; only the
    # lines with a finding are visited, so a file of many functions and findings stays linear
    lines, owner = sorted({line for line, _ in out}), {}
    for start, end, name in sorted(spans):
        i = bisect.bisect_left(lines, start)
        while i < len(lines) and lines[i] <= end:
            owner[lines[i]] = name
            i += 1
    return sorted({(owner.get(line), line, label) for line, label in out}, key=lambda f: (f[1], f[2]))


def calls(source):
    """{top-level function: names of the functions it calls by plain name}, of a source that parses
    ({} otherwise): which of a file's own functions each one builds on (rnn_forward on rnn_step_forward)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    return {node.name: {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
