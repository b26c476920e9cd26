"""Forbidden layers are recognised by the operator that runs, whatever Python name reached it.

The worker's observer (worker.install_observer) watches every torch operator of a student call and
compares its ATen name with the function's deny-list (spec.GradedFunction.forbidden_ops, built
from autograder/engine/forbidden.py). Here every denied layer is called through each name that reaches
it, and the four bypasses that once got full marks are graded end to end.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import FIXED_SEED, ROOT, full, make_variant, messages, scores

from autograder.engine import forbidden, results, runner

from autograder import registry
from autograder.engine.sandbox import Limits

FAST = Limits(call_timeout=5.0)

# expected operator -> the calls that must reach it (names of the torch.nn module or functional,
# torch.*, torch._VF.*, torch.ops.aten.* and torch._C.* where one exists)
SETUP = """
import torch
import torch.nn.functional as F
x = torch.randn(2, 3, 4); H = 5
hx = (torch.zeros(1, 2, H), torch.zeros(1, 2, H))
hx1 = torch.zeros(1, 2, H)
w4 = [torch.randn(4 * H, 4), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H)]
w3 = [torch.randn(3 * H, 4), torch.randn(3 * H, H), torch.randn(3 * H), torch.randn(3 * H)]
w1 = [torch.randn(H, 4), torch.randn(H, H), torch.randn(H), torch.randn(H)]
x2, h2 = torch.randn(2, 4), torch.randn(2, H)
W, idx = torch.randn(5, 3), torch.tensor([1, 2, 2])
s, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
q = torch.randn(2, 1, 3, 4)
E = torch.randn(2, 3, 4)
"""
CALLS = {
    "lstm": ["torch.nn.LSTM(4, H, batch_first=True)(x)", "torch.lstm(x, hx, w4, True, 1, 0.0, False, False, True)",
             "torch._VF.lstm(x, hx, w4, True, 1, 0.0, False, False, True)",
             "torch.ops.aten.lstm.input(x, hx, w4, True, 1, 0.0, False, False, True)",
             "torch._C._VariableFunctions.lstm(x, hx, w4, True, 1, 0.0, False, False, True)"],
    "lstm_cell": ["torch.nn.LSTMCell(4, H)(x2)", "torch.lstm_cell(x2, (h2, h2), *w4)",
                  "torch._VF.lstm_cell(x2, (h2, h2), *w4)", "torch.ops.aten.lstm_cell(x2, [h2, h2], *w4)"],
    "rnn_tanh": ["torch.nn.RNN(4, H, batch_first=True)(x)",
                 "torch.rnn_tanh(x, hx1, w1, True, 1, 0.0, False, False, True)",
                 "torch._VF.rnn_tanh(x, hx1, w1, True, 1, 0.0, False, False, True)",
                 "torch.ops.aten.rnn_tanh.input(x, hx1, w1, True, 1, 0.0, False, False, True)",
                 "torch._C._VariableFunctions.rnn_tanh(x, hx1, w1, True, 1, 0.0, False, False, True)"],
    "rnn_tanh_cell": ["torch.nn.RNNCell(4, H)(x2)", "torch.rnn_tanh_cell(x2, h2, *w1)",
                      "torch._VF.rnn_tanh_cell(x2, h2, *w1)", "torch.ops.aten.rnn_tanh_cell(x2, h2, *w1)"],
    "rnn_relu_cell": ["torch.nn.RNNCell(4, H, nonlinearity='relu')(x2)", "torch.rnn_relu_cell(x2, h2, *w1)"],
    "gru": ["torch.nn.GRU(4, H, batch_first=True)(x)", "torch.gru(x, hx1, w3, True, 1, 0.0, False, False, True)",
            "torch._VF.gru(x, hx1, w3, True, 1, 0.0, False, False, True)",
            "torch.ops.aten.gru.input(x, hx1, w3, True, 1, 0.0, False, False, True)"],
    "gru_cell": ["torch.nn.GRUCell(4, H)(x2)", "torch.gru_cell(x2, h2, *w3)", "torch._VF.gru_cell(x2, h2, *w3)",
                 "torch.ops.aten.gru_cell(x2, h2, *w3)"],
    "embedding": ["F.embedding(idx, W)", "torch.nn.Embedding.from_pretrained(W)(idx)", "torch.embedding(W, idx)",
                  "torch._VF.embedding(W, idx)", "torch.ops.aten.embedding(W, idx)",
                  "torch.ops.aten.embedding.default(W, idx)", "torch._C._VariableFunctions.embedding(W, idx)"],
    "embedding_dense_backward": ["torch.ops.aten.embedding_dense_backward(torch.ones(3, 3), idx, 5, -1, False)",
                                 "torch._C._VariableFunctions.embedding_dense_backward("
                                 "torch.ones(3, 3), idx, 5, -1, False) if hasattr(torch._C._VariableFunctions, "
                                 "'embedding_dense_backward') else torch.ops.aten.embedding_dense_backward.default("
                                 "torch.ones(3, 3), idx, 5, -1, False)"],
    "embedding_bag": ["F.embedding_bag(idx, W, torch.tensor([0]))",
                      "torch.embedding_bag(W, idx, torch.tensor([0]))"],
    "cross_entropy": ["F.cross_entropy(s, y)", "torch.nn.CrossEntropyLoss()(s, y)"],  # F's own name first
    "cross_entropy_loss": ["torch._C._nn.cross_entropy_loss(s, y)", "torch.ops.aten.cross_entropy_loss(s, y)"],
    "nll_loss": ["F.nll_loss(s, y)", "torch.nn.NLLLoss()(s, y)", "torch._C._nn.nll_loss(s, y)",
                 "torch.ops.aten.nll_loss(s, y)"],
    "nll_loss_forward": ["torch.ops.aten.nll_loss_forward(s, y, None, 1, -100)",
                         "torch.ops.aten.nll_loss_forward.default(s, y, None, 1, -100)"],
    "log_softmax": ["F.log_softmax(s, 1)", "torch.log_softmax(s, 1)", "s.log_softmax(1)",
                    "torch.nn.LogSoftmax(1)(s)",
                    "torch.ops.aten.log_softmax.int(s, 1)"],
    "special_log_softmax": ["torch.special.log_softmax(s, 1)"],
    "_log_softmax": ["torch._log_softmax(s, 1, False)", "torch.ops.aten._log_softmax(s, 1, False)",
                     "torch._VF._log_softmax(s, 1, False)"],
    "scaled_dot_product_attention": [
        "F.scaled_dot_product_attention(q, q, q)", "torch._C._nn.scaled_dot_product_attention(q, q, q)",
        "torch.ops.aten.scaled_dot_product_attention(q, q, q)"],
    "_scaled_dot_product_attention_math": ["torch.ops.aten._scaled_dot_product_attention_math(q, q, q)",
                                           "torch._scaled_dot_product_attention_math(q, q, q)"],
    "_scaled_dot_product_flash_attention_for_cpu": [
        "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, q, q)",
        "torch._scaled_dot_product_flash_attention_for_cpu(q, q, q)"],
    "multi_head_attention_forward": ["torch.nn.MultiheadAttention(4, 2, batch_first=True)(E, E, E)",
                                     "F.multi_head_attention_forward(E.transpose(0, 1), E.transpose(0, 1), "
                                     "E.transpose(0, 1), 4, 2, torch.randn(12, 4), torch.randn(12), None, None, "
                                     "False, 0.0, torch.randn(4, 4), torch.randn(4))"],
    "_native_multi_head_attention": ["torch._native_multi_head_attention(E, E, E, 4, 2, torch.randn(12, 4), "
                                     "torch.randn(12), torch.randn(4, 4), torch.randn(4))"],
    "_masked_softmax": ["torch._masked_softmax(s, torch.zeros(3, 4, dtype=torch.bool))"],
    "_foreach_norm": ["torch._foreach_norm([s, s])", "torch.ops.aten._foreach_norm.Scalar([s, s])",
                      "torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(s)], 1.0) if False else "
                      "torch.nn.utils.get_total_norm([s, s])"],
}

PROBE = r"""
import json, sys, torch
sys.path.insert(0, %(root)r)
from autograder.engine import forbidden, worker
observed = worker.install_observer(torch)
exec(%(setup)r)
seen = {}
for op, calls in json.loads(%(calls)r).items():
    for call in calls:
        del worker._violations[:]
        try:
            observed(lambda: eval(call), (), forbidden.LAYERS_AND_LOG_SOFTMAX)
        except Exception as e:  # the operator was still seen before it failed (e.g. a CUDA-only kernel)
            pass
        seen[call] = list(worker._violations)
del worker._violations[:]
allowed = "torch.softmax(s, 1); torch.logsumexp(s, 1); torch.tanh(s); torch.sigmoid(s); s @ s.T; " \
          "torch.einsum('ij,kj->ik', s, s); s[y]; W[idx]; torch.zeros(3).index_add_(0, y, torch.ones(3))"
observed(lambda: exec(allowed), (), forbidden.LAYERS_AND_LOG_SOFTMAX)
seen["allowed"] = list(worker._violations)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def seen():
    """What the observer recorded for every call above, in a fresh interpreter (it patches torch)."""
    code = PROBE % {"root": ROOT, "setup": SETUP, "calls": json.dumps(CALLS)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_deny_lists_are_built_from_the_groups_and_never_deny_an_allowed_op():
    for fn in registry.FUNCTIONS:
        assert set(forbidden.LAYERS) <= set(fn.forbidden_ops), fn.name
        assert not set(fn.forbidden_ops) & set(forbidden.ALLOWED), fn.name
    loss_graded = {"temporal_softmax_loss", "truncated_bptt_grads", "tbptt_train"}
    for fn in registry.FUNCTIONS:
        assert ("log_softmax" in fn.forbidden_ops) == (fn.name in loss_graded), fn.name


@pytest.mark.parametrize("op", sorted(CALLS))
def test_every_name_of_a_denied_operator_is_seen(seen, op):
    assert op in forbidden.LAYERS_AND_LOG_SOFTMAX
    for call in CALLS[op]:
        labels = seen[call]
        assert any("aten::%s)" % op in label for label in labels), (call, labels)


def test_allowed_operations_are_never_reported(seen):
    assert seen["allowed"] == []


# --------------------------------------------------------------------------- end to end
def attack(tmp_path, file, anchor, body):
    """The solutions, with `body` run first inside the function whose fenced region starts at anchor."""
    new = "    # BEGIN SOLUTION\n" + textwrap.indent(textwrap.dedent(body), "    ") + anchor[len("    # BEGIN SOLUTION\n"):]
    return make_variant(str(tmp_path / "sub"), file, [(anchor, new)])


def grade(sub, names):
    plan = registry.plan(registry.select(names), device="cpu", seed=FIXED_SEED)
    return runner.grade(sub, plan, FAST)


LSTM = ("lstm_layers.py", "    # BEGIN SOLUTION\n    N, T, _ = x.shape\n    H = h0.shape[1]\n")
DOT = ("attention.py", "    # BEGIN SOLUTION\n    Dk = q.shape[1]\n    scores = (K @ q.unsqueeze(2))")
EMBED = ("rnn_layers.py", "    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D)")
LSTM_CALL = ("torch.{}(x, (h0[None], torch.zeros_like(h0)[None]), [Wx.T, Wh.T, b, torch.zeros_like(b)], "
             "True, 1, 0.0, False, False, True)\n")


@pytest.mark.parametrize("target,body,fn,words", [
    (LSTM, LSTM_CALL.format("_VF.lstm"), "lstm_forward", "torch's built-in LSTM (aten::lstm)"),
    (LSTM, LSTM_CALL.format("ops.aten.lstm.input"), "lstm_forward", "torch's built-in LSTM (aten::lstm)"),
    (DOT, "torch.ops.aten.scaled_dot_product_attention(q[:, None, None], K[:, None], V[:, None])\n",
     "dot_attention_forward", "torch's built-in attention (aten::scaled_dot_product_attention)"),
    (EMBED, "torch._C._VariableFunctions.embedding(W, x)\n", "word_embedding_forward",
     "torch's built-in embedding (aten::embedding)"),
    (EMBED, "getattr(torch, 'embed' + 'ding')(W, x)\n", "word_embedding_forward", "aten::embedding"),
    (EMBED, "m = torch._C._pop_torch_function_stack()\ntorch._C._VariableFunctions.embedding(W, x)\n"
            "torch._C._push_on_torch_function_stack(m)\n", "word_embedding_forward",
     "a pop of the grader's operator observer"),
    (EMBED, "torch._C._pop_torch_function_stack()\n", "word_embedding_forward", "removed the grader's operator observer"),
    (EMBED, "with torch._C.DisableTorchFunction():\n    torch._C._VariableFunctions.embedding(W, x)\n",
     "word_embedding_forward", "switches off the grader's operator observer"),
    (EMBED, "class S(torch.Tensor):\n"
            "    @classmethod\n"
            "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
            "        torch._C._VariableFunctions.embedding(W, x)\n"
            "        return super().__torch_function__(func, types, args, kwargs)\n"
            "W.as_subclass(S) + 0\n", "word_embedding_forward", "torch.Tensor subclass"),
], ids=["_VF.lstm", "ops.aten.lstm.input", "ops.aten.sdpa", "_C._VariableFunctions.embedding",
        "getattr(torch, computed)", "observer popped and pushed back", "observer popped", "DisableTorchFunction",
        "Tensor subclass"])
def test_bypasses_get_zero_with_the_operator_named(tmp_path, target, body, fn, words):
    """The attacked function gets zero; its backward, which only takes a cache from it, keeps its points."""
    file, anchor = target
    backward = fn.replace("forward", "backward")
    report = grade(attack(tmp_path, file, anchor, body), [fn, backward])
    got, best = scores(report), full(report)
    assert (got[fn], got[backward]) == (0, best[backward]), (messages(report, fn), messages(report, backward))
    text = messages(report, fn)
    assert words in text and "%s uses" % fn in text and "which this assignment does not allow" in text, text


def test_side_roads_are_shown_to_the_instructor_only(tmp_path):
    sub = attack(tmp_path, *EMBED, "import importlib\nf = torch._C._VariableFunctions.tanh\n")
    report = grade(sub, ["word_embedding_forward"])
    assert scores(report) == full(report)  # tanh is allowed: reported for a look, no points lost
    data = results.gradescope(report)
    entry = [t for t in data["tests"] if t["tags"] == ["static-review"]]
    assert entry and entry[0]["visibility"] == "hidden", data["tests"]
    assert "torch._C" in entry[0]["output"] and "an import of importlib" in entry[0]["output"]
    assert "torch._C" not in json.dumps([t for t in data["tests"] if t["visibility"] != "hidden"])
