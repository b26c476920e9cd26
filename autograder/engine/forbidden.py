"""What students may not use, stated once: the grader's guards, deny-lists and static scan come from here.

The assignment forbids a few things in every student file (API.md, "Conventions"; the write-up, "The
rules"): autograd, and the library layers that would do a graded function's work for it (torch's
RNN, LSTM and GRU, embedding, cross-entropy, attention, gradient clipping; log-softmax where the
loss is graded). The grader sees each of them three ways, all three derived from TABLE:

- by operator: during every student call the worker's observer (worker.Observer, a
  TorchFunctionMode) compares the name of each torch operator that runs with the function's
  deny-list (spec.GradedFunction.forbidden_ops: LAYERS, or LAYERS_AND_LOG_SOFTMAX where the loss is
  graded), whatever Python name reached it: torch.nn.LSTM, torch.lstm, torch._VF.lstm,
  torch.ops.aten.lstm.input and torch._C._VariableFunctions.lstm all run the operator `lstm`.
  Entry.ops are ATen operator names; Entry.functions are torch's Python functions that reach the
  observer under their own name (F.cross_entropy), by their dotted path;
- by Python name: the worker's guards (GUARDS, [(owner, attribute, label)]) record every call of
  an entry point (a class: its __init__), autograd's included. Beside them the worker guards
  autograd's engine itself, and its observer records any operator that returns a tensor requiring
  grad (autograd by another road);
- in the source: static.py shows the student each line that names one (SCAN_NAMES, SCAN_OWNED,
  SCAN_IMPORTS, SCAN_KEYWORDS, SCAN_MODULES).

Each Entry holds the words a student reads ("lstm_forward uses torch's built-in LSTM (aten::lstm),
which this assignment does not allow"), what the student writes instead, and the Python names a
student would write (Api), each saying how it is guarded and scanned. A new forbidden layer is
one Entry. markdown_table() renders the students' table of it; `python -m autograder.engine.forbidden
FILE.md ...` rewrites the region between MARK_BEGIN and MARK_END of each file, and `--check` lists
the files whose region differs (the release puts the same table into the students' README).

This file imports nothing from the package, nor torch (the worker gets GUARDS through its bootstrap;
the public checker ships this file as it is). Python 3.10.
"""
import argparse
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

# How static.py finds an Api's name in a student's source (Api.scan):
NAME = "name"  # its last part as any attribute or imported name (distinctive words: LSTM, cross_entropy)
OWNED = "owned"  # only as an attribute of its owner (F, functional or torch: common words like lstm, embedding)
KEYWORD = "keyword"  # a keyword argument of that name, unless the constant False (requires_grad=)

# Where an Entry is forbidden (Entry.where)
EVERYWHERE = "every graded function"
WHERE_LOSS = "where the loss is graded"

# Short names students write and read (F.embedding, Tensor.backward): the table shows them, and the scan
# knows them as owners too.
ALIASES = {"torch.nn.functional": "F", "torch.Tensor": "Tensor"}


@dataclass(frozen=True)
class Api:
    """One Python name of something forbidden, as a student would write it in full.

    path: dotted (torch.nn.functional.embedding, torch.Tensor.backward); a KEYWORD: the argument's name.
    label: the words a student reads when the worker's guard sees it (default: the path, with
      torch.nn.functional written F).
    guard: the worker replaces it with a wrapper that records each call (a class, whose last part is
      capitalised: its __init__). False: caught otherwise (nn.Embedding calls F.embedding, a module's
      functions have guards of their own, log-softmax is allowed outside the loss).
    scan: NAME, OWNED, KEYWORD (see above) or None: its own last part is not scanned for (common
      words: grad, vjp; or allowed in some functions: log_softmax). Its path, written in full, is
      still found where an owner is scanned for (torch.autograd.grad: `autograd`).
    scanned_as: what the scan calls it, where that is not label.
    module: a module: `import` of it or of a submodule, and `from` it, are findings too.
    """

    path: str
    label: str = ""
    guard: bool = True
    scan: Optional[str] = NAME
    scanned_as: str = ""
    module: bool = False

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.shown)
        if not self.scanned_as:
            object.__setattr__(self, "scanned_as", self.label)

    @property
    def shown(self):
        """The path as the students' table shows it: F.embedding, requires_grad=True."""
        if self.scan == KEYWORD:
            return "%s=True" % self.path
        for module, alias in ALIASES.items():
            if self.path.startswith(module + "."):
                return alias + self.path[len(module):]
        return self.path

    @property
    def name(self):
        return self.path.rsplit(".", 1)[-1]

    @property
    def owner(self):
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


@dataclass(frozen=True)
class Entry:
    """One forbidden thing: a library layer (its family of operators), autograd, or a way around the guards.

    words: what a message calls it ("torch's built-in LSTM"); each denied operator's label is
      "<words> (aten::<op>)".
    instead: what the student writes instead, in Markdown (the students' table).
    apis: the Python names a student would write.
    ops: ATen operator names, as the observer names them (worker.op_name: no namespace, no overload).
      Some have kernels only on a GPU backend: BACKEND_ONLY says which.
    functions: dotted paths of torch's Python functions that reach the observer under their own name
      (and so are denied by it), where that name is no ATen operator's.
    where: EVERYWHERE (in LAYERS) or WHERE_LOSS (only in LAYERS_AND_LOG_SOFTMAX).
    """

    key: str
    words: str
    instead: str
    apis: Tuple[Api, ...] = ()
    ops: Tuple[str, ...] = ()
    functions: Tuple[str, ...] = ()
    where: str = EVERYWHERE
    deny: Dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = [f.rsplit(".", 1)[-1] for f in self.functions] + list(self.ops)
        object.__setattr__(self, "deny", {n: "%s (aten::%s)" % (self.words, n) for n in names})


def _torch(*names):
    """Apis torch.<name>: the ATen functions under the layers, reachable as torch.lstm, ... (common words:
    scanned as attributes of torch only)."""
    return tuple(Api("torch." + n, scan=OWNED) for n in names)


TABLE = (
    Entry("autograd", "autograd", "the backward passes you write (`*_backward`)", apis=(
        Api("torch.Tensor.backward", "Tensor.backward (autograd)", scanned_as="autograd (.backward)"),
        Api("torch.Tensor.requires_grad_", "Tensor.requires_grad_ (autograd)", scanned_as="autograd (requires_grad_)"),
        Api("requires_grad", "autograd (requires_grad=True)", guard=False, scan=KEYWORD),
        Api("torch.autograd", guard=False, module=True),
        Api("torch.autograd.backward"),
        Api("torch.autograd.grad", scan=None),
        Api("torch.autograd.functional.jacobian", scan=None),
        Api("torch.autograd.functional.vjp", scan=None),
        Api("torch.func", guard=False, scan=OWNED, module=True),
        Api("torch.func.grad", scan=None),
        Api("torch.func.vjp", scan=None),
        Api("torch.func.jacrev", scan=None))),
    Entry("rnn", "torch's built-in RNN", "`rnn_step_forward`, `rnn_forward`, `birnn_forward` (`rnn_layers.py`)",
          apis=(Api("torch.nn.RNN"), Api("torch.nn.RNNCell")) + _torch("rnn_tanh", "rnn_relu", "rnn_tanh_cell"),
          ops=("rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell", "quantized_rnn_tanh_cell",
               "quantized_rnn_relu_cell", "_cudnn_rnn", "_cudnn_rnn_backward", "_cudnn_rnn_flatten_weight",
               "miopen_rnn", "miopen_rnn_backward", "mkldnn_rnn_layer", "mkldnn_rnn_layer_backward",
               "_thnn_differentiable_lstm_cell_backward", "_thnn_differentiable_gru_cell_backward")),
    Entry("lstm", "torch's built-in LSTM", "`lstm_step_forward`, `lstm_forward` (`lstm_layers.py`)",
          apis=(Api("torch.nn.LSTM"), Api("torch.nn.LSTMCell")) + _torch("lstm", "lstm_cell"),
          ops=("lstm", "lstm_cell", "_thnn_fused_lstm_cell", "_thnn_fused_lstm_cell_backward",
               "_thnn_fused_lstm_cell_backward_impl", "quantized_lstm_cell", "_use_cudnn_rnn_flatten_weight",
               "lstm_mps_backward")),
    Entry("gru", "torch's built-in GRU", "the recurrent layers you write (`rnn_layers.py`, `lstm_layers.py`)",
          apis=(Api("torch.nn.GRU"), Api("torch.nn.GRUCell")) + _torch("gru", "gru_cell"),
          ops=("gru", "gru_cell", "_thnn_fused_gru_cell", "_thnn_fused_gru_cell_backward", "quantized_gru_cell")),
    Entry("embedding", "torch's built-in embedding", "`word_embedding_forward` (`rnn_layers.py`)", apis=(
        Api("torch.nn.functional.embedding", scan=OWNED),
        Api("torch.nn.Embedding", guard=False),  # its forward calls F.embedding
        Api("torch.embedding", scan=OWNED),
        Api("torch.nn.functional.embedding_bag"),
        Api("torch.embedding_bag"),
        Api("torch.nn.EmbeddingBag", guard=False)),  # its forward calls F.embedding_bag
          ops=("embedding", "embedding_backward", "embedding_dense_backward", "embedding_sparse_backward",
               "_embedding_bag", "_embedding_bag_forward_only", "embedding_bag", "_embedding_bag_backward",
               "_embedding_bag_dense_backward", "_embedding_bag_sparse_backward", "embedding_renorm_")),
    Entry("loss", "torch's built-in cross-entropy / NLL loss", "`temporal_softmax_loss` (`rnn_layers.py`)", apis=(
        Api("torch.nn.functional.cross_entropy"),
        Api("torch.nn.CrossEntropyLoss", guard=False),  # its forward calls F.cross_entropy
        Api("torch.nn.functional.nll_loss"),
        Api("torch.nn.NLLLoss", guard=False),  # its forward calls F.nll_loss
        Api("torch._C._nn.cross_entropy_loss", scanned_as="cross_entropy_loss")),
          functions=("torch.nn.functional.cross_entropy",),
          ops=("cross_entropy_loss", "nll_loss", "nll_loss2d", "nll_loss_nd", "nll_loss_forward",
               "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward")),
    # log-softmax is half of the loss; logsumexp stays allowed. Not scanned: it is allowed elsewhere.
    Entry("log_softmax", "torch's built-in log-softmax",
          "the log-softmax inside `temporal_softmax_loss` (forbidden only there and in `truncated_bptt_grads`, "
          "`tbptt_train`; `torch.logsumexp` is fine)",
          apis=tuple(Api(p, guard=False, scan=None) for p in (
              "torch.nn.functional.log_softmax", "torch.log_softmax", "torch.Tensor.log_softmax",
              "torch.special.log_softmax", "torch.nn.LogSoftmax")),
          ops=("log_softmax", "_log_softmax", "_log_softmax_backward_data", "special_log_softmax"),
          where=WHERE_LOSS),
    Entry("attention", "torch's built-in attention",
          "`dot_attention_forward`, `additive_attention_forward`, `multihead_attention_forward` (`attention.py`)",
          apis=(Api("torch.nn.MultiheadAttention"), Api("torch.nn.functional.scaled_dot_product_attention"),
                Api("torch.nn.functional.multi_head_attention_forward"),
                Api("torch._C._nn.scaled_dot_product_attention")),
          functions=("torch.nn.functional.multi_head_attention_forward",),
          ops=("scaled_dot_product_attention", "_scaled_dot_product_attention_math",
               "_scaled_dot_product_attention_math_for_mps", "_fused_sdp_choice",
               "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
               "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
               "_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
               "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
               "_scaled_dot_product_fused_attention_overrideable",
               "_scaled_dot_product_fused_attention_overrideable_backward",
               "_flash_attention_forward", "_flash_attention_backward", "_efficient_attention_forward",
               "_efficient_attention_backward", "_cudnn_attention_forward", "_native_multi_head_attention",
               "_masked_softmax", "_masked_softmax_backward", "_transformer_encoder_layer_fwd")),
    # torch's clipping functions never reach the observer under their own names (they do not dispatch
    # through __torch_function__; get_total_norm's is _get_total_norm): the guards catch them, and the
    # observer the norm they compute (_foreach_norm).
    Entry("clipping", "torch's built-in gradient clipping", "`clip_grad_norm` (`tbptt.py`)", apis=(
        Api("torch.nn.utils.clip_grad_norm_"),
        Api("torch.nn.utils.clip_grad.clip_grad_norm_", "torch.nn.utils.clip_grad_norm_"),
        Api("torch.nn.utils.clip_grads_with_norm_", scanned_as="clip_grads_with_norm_"),
        Api("torch.nn.utils.get_total_norm", scanned_as="get_total_norm")),
          ops=("_foreach_norm",)),
    # Not a layer: reloading a torch module puts back what the guards replaced (the worker notices, and
    # records it, after the call); the scan names it.
    Entry("reload", "reloading a module", "nothing: reloading torch would undo the grader's guards", apis=(
        Api("importlib.reload", guard=False),)),
)
BY_KEY = {e.key: e for e in TABLE}

# Operators with kernels only on a GPU backend (none on the CPU): denied all the same, for a grading on
# that backend. tests/test_forbidden_source.py checks that each has no CPU kernel and every other has one.
BACKEND_ONLY = dict(
    [(op, "CUDA (cuDNN)") for op in ("_cudnn_rnn", "_cudnn_rnn_backward", "_cudnn_rnn_flatten_weight",
                                     "_scaled_dot_product_cudnn_attention",
                                     "_scaled_dot_product_cudnn_attention_backward", "_cudnn_attention_forward")]
    + [(op, "ROCm (MIOpen)") for op in ("miopen_rnn", "miopen_rnn_backward")]
    + [(op, "MPS") for op in ("lstm_mps_backward", "_scaled_dot_product_attention_math_for_mps")]
    + [(op, "CUDA") for op in ("_thnn_fused_lstm_cell", "_thnn_fused_lstm_cell_backward_impl",
                               "_thnn_fused_gru_cell", "_thnn_fused_gru_cell_backward",
                               "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
                               "_scaled_dot_product_efficient_attention",
                               "_scaled_dot_product_efficient_attention_backward",
                               "_flash_attention_forward", "_flash_attention_backward",
                               "_efficient_attention_forward", "_efficient_attention_backward")])

# Student-allowed building blocks, stated so that no deny-list ever grows into them.
ALLOWED = ("softmax", "_softmax", "logsumexp", "tanh", "sigmoid", "exp", "log", "matmul", "mm", "bmm",
           "einsum", "index", "index_select", "index_add", "index_add_", "gather", "scatter_add",
           "__getitem__", "__setitem__", "norm", "linalg_vector_norm", "sqrt", "sum", "max", "amax",
           "argmax", "where", "masked_fill", "cat", "stack", "zeros", "zeros_like", "one_hot")


# --------------------------------------------------------------------------- the observer's deny-lists
def deny_list(*keys):
    """{operator name: label} of the entries `keys`, in order."""
    out = {}
    for key in keys:
        out.update(BY_KEY[key].deny)
    return out


RNN = deny_list("rnn", "lstm", "gru")
EMBEDDING = deny_list("embedding")
LOSS = deny_list("loss")
# Only where a loss is graded: log-softmax is half of the loss (logsumexp stays allowed).
LOG_SOFTMAX = deny_list("log_softmax")
ATTENTION = deny_list("attention")
CLIPPING = deny_list("clipping")
# What no graded function may use: API.md forbids these library layers in every file.
LAYERS = deny_list(*[e.key for e in TABLE if e.where == EVERYWHERE])
# Where the loss itself is graded (temporal_softmax_loss, and the TBPTT functions built on it).
LAYERS_AND_LOG_SOFTMAX = deny_list(*[e.key for e in TABLE])

assert not set(LAYERS_AND_LOG_SOFTMAX) & set(ALLOWED)


# --------------------------------------------------------------------------- the worker's guards
def _guards():
    out = []
    for entry in TABLE:
        for api in entry.apis:
            if api.guard:
                owner, attr = (api.path, "__init__") if api.name[:1].isupper() else (api.owner, api.name)
                out.append((owner, attr, api.label))
    return out


# [(owner's dotted path, attribute, label)]: worker.install_guards replaces each attribute with a wrapper
# that records the label on every call.
GUARDS = _guards()


# --------------------------------------------------------------------------- the static scan's names
def _scan():
    names, owned, imports, keywords, modules = {}, {}, {}, {}, {}
    for entry in TABLE:
        for api in entry.apis:
            if api.scan == NAME:
                names.setdefault(api.name, api.scanned_as)
            elif api.scan == OWNED:
                bases, words = owned.get(api.name, (set(), []))
                bases |= {api.owner.rsplit(".", 1)[-1]} | ({ALIASES[api.owner]} if api.owner in ALIASES else set())
                owned[api.name] = (bases, words + [api.scanned_as] if api.scanned_as not in words else words)
                imports[api.path] = api.scanned_as
            elif api.scan == KEYWORD:
                keywords[api.path] = api.scanned_as
            if api.module:
                modules[api.path] = api.scanned_as
    owned = {name: (frozenset(bases), " / ".join(words)) for name, (bases, words) in owned.items()}
    return names, owned, imports, keywords, modules


# SCAN_NAMES: attribute or imported name -> label (LSTM, cross_entropy, backward, ...).
# SCAN_OWNED: name -> (the owners it counts under, label): torch.lstm but not self.lstm.
# SCAN_IMPORTS: full path of an OWNED name -> label, for `from torch import lstm`.
# SCAN_KEYWORDS: keyword argument -> label (requires_grad=, unless False).
# SCAN_MODULES: module -> label: `import torch.autograd`, `from torch.func import grad`.
SCAN_NAMES, SCAN_OWNED, SCAN_IMPORTS, SCAN_KEYWORDS, SCAN_MODULES = _scan()


# --------------------------------------------------------------------------- the students' table
MARK_BEGIN = "<!-- forbidden:begin -->"
MARK_END = "<!-- forbidden:end -->"
_REGION = re.compile(r"(%s)(.*?)(%s)" % (re.escape(MARK_BEGIN), re.escape(MARK_END)), re.S)

NOTE = ("A function that uses one of these gets 0 points. The grader recognises them by the operator that runs, "
        "whatever name reaches it: `torch._VF.lstm` or `torch.ops.aten.lstm` is the same `aten::lstm` as "
        "`torch.nn.LSTM`. Elementwise operations, matrix products and `einsum`, reductions, indexing, "
        "`torch.softmax`, `torch.logsumexp`, `torch.sigmoid` and `torch.tanh` are fine.")


def markdown_table(track="torch"):
    """The students' table of what is forbidden (Markdown: a pipe table, then NOTE), from TABLE; in the NumPy
    track (spec.TRACKS), numpy_table()."""
    if track == "numpy":
        return numpy_table()
    rows = ["| not allowed | what you write instead | the names it goes by |", "|---|---|---|"]
    for entry in TABLE:
        names = ", ".join("`%s`" % api.shown for api in entry.apis)
        rows.append("| %s | %s | %s |" % (entry.words, entry.instead, names))
    return "\n".join(rows) + "\n\n" + NOTE + "\n"


# Autograd by another library than torch's (either track): the worker records the import of any of these
# top-level packages (worker._AutogradImports, worker._autograd_libraries). A copy of one vendored under another
# name is not recognised by its name: the static review and the instructor's eyes are what remain.
AUTOGRAD_LIBRARIES = ("autograd", "jax", "jaxlib", "tensorflow", "keras", "mxnet", "chainer", "tinygrad", "mygrad",
                      "micrograd", "paddle", "theano", "pytensor", "flax", "mlx")


def numpy_table():
    """The NumPy track's table of what is forbidden: any torch operator during a call (the worker's observer
    records each, worker.TORCH_IN_NUMPY), and autograd by any library (AUTOGRAD_LIBRARIES)."""
    return "\n".join([
        "| not allowed | what you write instead | how the grader sees it |", "|---|---|---|",
        "| **any torch operator** during a call of your functions (`torch.tanh`, `torch.from_numpy(x).exp()`, "
        "`F.softmax`, ...) | NumPy: `np.tanh`, `np.exp`, `@`, `np.einsum`, `np.add.at`, ... | every torch operator "
        "that runs during your call, whatever name reached it |",
        "| **autograd by any library** | a backward pass written by hand | the import of one of these, however "
        "it is imported: %s |" % ", ".join("`%s`" % name for name in AUTOGRAD_LIBRARIES),
    ]) + ("\n\nBreaking either costs the function all its points, whatever its values. Your files may import "
           "NumPy, the standard library and your own helper files.\n")


def fill(text, table=None):
    """text with every region between MARK_BEGIN and MARK_END holding the table (markdown_table()).

    Raises ValueError where the markers do not pair up (one without the other, or out of order)."""
    if text.count(MARK_BEGIN) != text.count(MARK_END) or len(_REGION.findall(text)) != text.count(MARK_BEGIN):
        raise ValueError("%s and %s do not pair up" % (MARK_BEGIN, MARK_END))
    body = "\n\n" + (markdown_table() if table is None else table) + "\n"
    return _REGION.sub(lambda m: m.group(1) + body + m.group(3), text)


def update(path, check=False, transform=fill):
    """Whether transform(the file's text) differs from it (by default: its regions from the table); unless
    check, the file is rewritten to hold it. A file without markers never differs. Raises what transform
    raises (fill: ValueError where the markers do not pair up)."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    new = transform(text)
    if new == text:
        return False
    if not check:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(new)
    return True


COMMAND = "python -m %s.forbidden" % __package__ if __package__ else "python forbidden.py"


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=COMMAND,
        description="Put the table of what students may not use (this file's TABLE) between the lines %s and %s "
                    "of each Markdown file; without files, print it." % (MARK_BEGIN, MARK_END))
    p.add_argument("files", nargs="*", metavar="FILE.md")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files whose region differs from the table (exit status 1)")
    args = p.parse_args(argv)
    if not args.files:
        sys.stdout.write(markdown_table())
        return 0
    stale = []
    for path in args.files:
        try:
            if update(path, check=args.check):
                stale.append(path)
        except (OSError, ValueError) as e:
            print("error: %s: %s" % (path, e), file=sys.stderr)
            return 2
    for path in stale:
        print("%s: the table of what is forbidden is out of date (%s %s)" % (path, COMMAND, path)
              if args.check else "%s: the table of what is forbidden rewritten" % path)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
