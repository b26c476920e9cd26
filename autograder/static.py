"""Static check of a student file: where the source mentions a forbidden API (AST only).

The worker's run-time guards decide the score (a function that calls a forbidden API gets zero);
this scan only reports where the source names one, so that a student sees the line, and an
instructor sees attempts that dodged the run-time guards (importlib.reload of torch, ...).
"""
import ast

# attribute or imported name -> what to call it
FORBIDDEN_NAMES = {
    "backward": "autograd (.backward)",
    "autograd": "torch.autograd",
    "requires_grad_": "autograd (requires_grad_)",
    "RNN": "torch.nn.RNN", "LSTM": "torch.nn.LSTM", "GRU": "torch.nn.GRU",
    "RNNCell": "torch.nn.RNNCell", "LSTMCell": "torch.nn.LSTMCell", "GRUCell": "torch.nn.GRUCell",
    "MultiheadAttention": "torch.nn.MultiheadAttention",
    "scaled_dot_product_attention": "F.scaled_dot_product_attention",
    "multi_head_attention_forward": "F.multi_head_attention_forward",
    "cross_entropy": "F.cross_entropy",
    "Embedding": "torch.nn.Embedding",
    "clip_grad_norm_": "torch.nn.utils.clip_grad_norm_",
    "reload": "importlib.reload",
}
# names forbidden only as an attribute of these bases (F.embedding, torch.func.grad, ...)
QUALIFIED = {"embedding": ({"F", "functional", "torch"}, "F.embedding / torch.embedding"),
             "func": ({"torch"}, "torch.func")}
for _op in ("rnn_tanh", "rnn_relu", "lstm", "gru", "rnn_tanh_cell", "lstm_cell", "gru_cell"):
    QUALIFIED[_op] = ({"torch"}, "torch." + _op)
for _op in ("cross_entropy_loss", "clip_grads_with_norm_", "get_total_norm"):
    FORBIDDEN_NAMES[_op] = _op


# Ways to reach an operator by another name, or to run code the scan cannot read: not forbidden in
# themselves (the run-time observer judges what runs), so they are shown to instructors only.
REVIEW_ATTRS = {"_VF": "torch._VF", "ops": "torch.ops", "_C": "torch._C"}
REVIEW_CALLS = {"__import__": "__import__", "eval": "eval", "exec": "exec", "compile": "compile"}


def review_findings(source):
    """[(line, label)] for what an instructor may want to read: torch._VF, torch.ops, torch._C,
    importlib, __import__, eval, exec, compile, and getattr on torch with a computed name."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out = []
    for node in ast.walk(tree):
        label = None
        if isinstance(node, ast.Attribute) and node.attr in REVIEW_ATTRS and _base_name(node.value) == "torch":
            label = REVIEW_ATTRS[node.attr]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            hits = [n for n in names if n and (n == "importlib" or n.startswith(
                ("importlib.", "torch._C", "torch._VF", "torch.ops")))]
            if hits:
                label = "an import of %s" % ", ".join(hits)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in REVIEW_CALLS:
                label = REVIEW_CALLS[node.func.id]
            elif (node.func.id == "getattr" and len(node.args) >= 2 and _base_name(node.args[0]) == "torch"
                  and not isinstance(node.args[1], ast.Constant)):
                label = "getattr on torch with a computed name"
        if label:
            out.append((node.lineno, label))
    return sorted(set(out))


def attach(statuses, results):
    """Static findings of every vetted file: (notes, review).

    Forbidden names go to their function's FunctionResult.static (module-level ones become
    notes); review_findings become instructor-only review lines.
    """
    notes, review = [], []
    by_file = {}
    for fr in results.values():
        by_file.setdefault(fr.fn.file, {})[fr.fn.name] = fr
    for module, st in statuses.items():
        if st.error or not st.path:
            continue
        with open(st.path, encoding="utf-8") as f:
            source = f.read()
        for func, line, label in findings(source):
            text = "%s.py line %d names %s, which this assignment does not allow" % (module, line, label)
            if func in by_file.get(module, {}):
                by_file[module][func].static.append(text)
            else:
                notes.append("static check: " + text)
        review += ["%s.py line %d: %s" % (module, line, label) for line, label in review_findings(source)]
    return notes, review


def _base_name(node):
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def findings(source):
    """[(function name or None, line, label)] for every mention of a forbidden API."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    spans = [(n.lineno, n.end_lineno, n.name) for n in ast.walk(tree)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def owner(line):
        inside = [s for s in spans if s[0] <= line <= s[1]]
        return max(inside)[2] if inside else None  # innermost: latest start

    out = []
    for node in ast.walk(tree):
        label = None
        if isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_NAMES:
                label = FORBIDDEN_NAMES[node.attr]
            elif node.attr in QUALIFIED:
                bases, text = QUALIFIED[node.attr]
                parent = node.value.attr if isinstance(node.value, ast.Attribute) else _base_name(node.value)
                if parent in bases:
                    label = text
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                label = "autograd (requires_grad=True)"
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES:
                    label = FORBIDDEN_NAMES[alias.name]
                elif node.module in QUALIFIED.get(alias.name, (set(), None))[0] or (
                        node.module == "torch.nn.functional" and alias.name == "embedding"):
                    label = "F.embedding"
            if node.module.startswith(("torch.autograd", "torch.func")):
                label = "torch.autograd" if "autograd" in node.module else "torch.func"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(("torch.autograd", "torch.func")):
                    label = "torch.autograd" if "autograd" in alias.name else "torch.func"
        if label and hasattr(node, "lineno"):
            out.append((owner(node.lineno), node.lineno, label))
    return sorted(set(out), key=lambda f: (f[1], f[2]))
