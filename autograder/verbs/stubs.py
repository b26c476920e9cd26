"""Generate the student files (assignment/) from the reference solutions (solutions/).

In a solution file, each student region sits inside a function and is fenced by lines

    # BEGIN SOLUTION
    ...reference code...
    # END SOLUTION

(otter-grader's markers). The region is replaced by a stub that fails loudly and names its
function. The function's closing `return` right after the region would be unreachable below the stub:
it stays as a comment that tells the student what their code ends with. A file without markers (gradient_check.py) is copied as it is. Nested, unbalanced or
missing markers, or a marker outside a function, stop generation with the file and line.
"""
import ast
import os
import re
import shutil

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
NEAR_MARKER = re.compile(r"#\s*(begin|end)\s*sol", re.IGNORECASE)  # typos of the markers
STUB = 'raise NotImplementedError("{fn}: not implemented yet")'
RETURN_NOTE = "# Your code replaces the line above and ends with:"


class MarkerError(Exception):
    """A malformed marker, with the file and line in the message."""


def _enclosing_function(tree, lineno):
    """Name of the innermost function whose body contains line `lineno`."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno < lineno <= node.end_lineno:
            if best is None or node.lineno > best.lineno:
                best = node
    return best.name if best else None


def make_stub(source, filename="<source>"):
    """Return the student version of `source` (text). Raises MarkerError."""
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        raise MarkerError("%s:%s: the solution itself does not parse: %s" % (filename, e.lineno, e.msg))
    # The closing return of each function: line it starts on -> line it ends on
    closing = {f.body[-1].lineno: f.body[-1].end_lineno for f in ast.walk(tree)
               if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(f.body[-1], ast.Return)}
    out = []
    open_at = None
    after_region = False  # only blank lines since the last END
    commented_until, note_indent = 0, ""
    for i, line in enumerate(lines, start=1):
        text = line.strip()
        if i <= commented_until:  # a closing return's next lines, at its own indent
            out.append(note_indent + "# " + line[len(note_indent):] if line.startswith(note_indent) else
                       note_indent + "# " + line.lstrip())
            continue
        if after_region and i in closing and open_at is None:
            note_indent = line[: len(line) - len(line.lstrip())]
            out.append(note_indent + RETURN_NOTE + "\n")
            out.append(note_indent + "# " + line.lstrip())
            commented_until = closing[i]
            after_region = False
            continue
        if text:
            after_region = False
        if text == BEGIN:
            if open_at is not None:
                raise MarkerError("%s:%d: nested '%s' (the one at line %d is still open)" % (filename, i, BEGIN, open_at))
            fn = _enclosing_function(tree, i)
            if fn is None:
                raise MarkerError("%s:%d: '%s' outside a function" % (filename, i, BEGIN))
            open_at = i
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB.format(fn=fn) + "\n")
        elif text == END:
            if open_at is None:
                raise MarkerError("%s:%d: '%s' without a matching '%s'" % (filename, i, END, BEGIN))
            open_at = None
            after_region = True
        elif NEAR_MARKER.match(text):
            raise MarkerError("%s:%d: malformed marker %r (write exactly '%s' or '%s' on its own line)"
                              % (filename, i, text, BEGIN, END))
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise MarkerError("%s:%d: '%s' is never closed by '%s'" % (filename, open_at, BEGIN, END))
    stub = "".join(out)
    ast.parse(stub, filename=filename)  # the stub must be valid Python
    return stub


def generate(src_dir, dst_dir):
    """Write the student version of every .py file of src_dir into dst_dir. Returns file names."""
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".py"))
    stubs = {}
    for name in names:  # all files first: a marker error leaves dst_dir untouched
        with open(os.path.join(src_dir, name), encoding="utf-8") as f:
            stubs[name] = make_stub(f.read(), os.path.join(src_dir, name))
    os.makedirs(dst_dir, exist_ok=True)
    for name, text in stubs.items():
        with open(os.path.join(dst_dir, name), "w", encoding="utf-8") as f:
            f.write(text)
    return names


def differences(src_dir, dst_dir, scratch):
    """Files of dst_dir that differ from a fresh generation (into `scratch`)."""
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    generate(src_dir, scratch)
    fresh = set(os.listdir(scratch))
    have = {n for n in os.listdir(dst_dir) if n.endswith(".py")} if os.path.isdir(dst_dir) else set()
    diffs = sorted(fresh ^ have)
    for name in sorted(fresh & have):
        with open(os.path.join(scratch, name), encoding="utf-8") as a, open(os.path.join(dst_dir, name), encoding="utf-8") as b:
            if a.read() != b.read():
                diffs.append(name)
    return diffs
