# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [raw]
# # ASSIGNMENT CONFIG
# name: 04_attention
# requirements: null
# export_cell: false
# check_all_cell: false
# run_tests: false
# solutions_pdf: false
# generate: false
# tests:
#   ok_format: false

# %% [markdown]
# # Notebook 4: encoder-decoder attention, soft, local, hard and multi-head
#
# The lecture's attention: at decoder step $t$ the decoder's state $h_{d[t-1]}$ is the
# *query*; a learned attention head scores every encoder state $h_{e[1:L]}$ against it; a
# softmax over the $L$ positions turns the scores into weights; the *context* handed to the
# decoder is the weighted sum of the encoder states:
#
# $$a_l = \mathrm{score}(q, K_l), \qquad w = \mathrm{softmax}(a), \qquad c = \sum_{l} w_l V_l .$$
#
# In `attention.py` you wrote the scores of the lecture and of its pitfalls slide:
# scaled dot-product $a_l = K_l \cdot q / \sqrt{D_k}$ and the learned additive head
# $a_l = v \cdot \tanh(q W_q + K_l W_k)$ (global *soft* attention), a mask that keeps a window
# around a center (*local* attention), the single most relevant state (*hard* attention), and
# several heads side by side (*multi-head* attention), each with its backward pass.
#
# Here you wire them into a small encoder-decoder and train it, forward and backward, on a task
# whose alignment is known in advance: **reversing a sequence**. The decoder's output at step
# $t$ is the input token at position $L-1-t$, so a model that attends well puts its weight on the
# *anti-diagonal* of the (decoder step $\times$ encoder position) map. Every gradient comes from
# your backward passes; no autograd.
#
# **What you write:** the functions of `attention.py`. This notebook uses them and asks two
# written questions. It runs in well under a minute on a laptop CPU.

# %%
import os
import sys

sys.path.insert(0, os.environ.get("RNN_ASSIGNMENT_DIR", "."))  # the folder with your .py files
DATA = os.path.join(os.environ.get("RNN_ASSIGNMENT_DIR", "."), "data")  # (not needed here)
FAST = os.environ.get("HANDOUT_FAST") == "1"  # a shorter run (the kit's own tests set it)

import math
import time

import matplotlib.pyplot as plt
import torch

# %matplotlib inline
# %load_ext autoreload
# %autoreload 2

torch.manual_seed(0)
torch.set_num_threads(1)  # the tensors here are tiny: one thread is faster than several
DTYPE = torch.float64

try:
    import notebook_checks  # runs the public checks (python check.py) from the notebook
except ImportError:
    notebook_checks = None
if hasattr(notebook_checks, "short_errors"):
    notebook_checks.short_errors()  # an unfinished function shows one short line, not a traceback

# Your functions, through track.load: the experiments are written in PyTorch, and on the NumPy track
# track.load converts tensors to arrays (and back) at the boundary, so your NumPy functions run unchanged.
from track import load

attention, gradient_check = load("attention"), load("gradient_check")
dot_attention_forward, dot_attention_backward = attention.dot_attention_forward, attention.dot_attention_backward
additive_attention_forward, additive_attention_backward = (attention.additive_attention_forward,
                                                           attention.additive_attention_backward)
hard_attention_forward, hard_attention_backward = attention.hard_attention_forward, attention.hard_attention_backward
multihead_attention_forward, multihead_attention_backward = (attention.multihead_attention_forward,
                                                             attention.multihead_attention_backward)
local_attention_mask = attention.local_attention_mask
eval_numerical_gradient, eval_numerical_gradient_array = (gradient_check.eval_numerical_gradient,
                                                          gradient_check.eval_numerical_gradient_array)
rel_error = gradient_check.rel_error

print("FAST run" if FAST else "full run", "| torch", torch.__version__)

# %% [markdown]
# ## 1. Soft attention: your code, checked numerically
#
# First the two soft (global) heads. The check below runs the public checks of
# `dot_attention_forward`, `dot_attention_backward`, `additive_attention_forward` and
# `additive_attention_backward` (the same as `python check.py` for these functions).

# %% [raw]
# # BEGIN QUESTION
# name: attention_soft_code
# points: 0

# %% [markdown]
# **Question 4.1 (code, graded by the autograder).** Implement dot-product and additive
# attention, forward and backward, in `attention.py`, and run the check below until it passes.

# %%
# Nothing to write in this cell: your code goes in attention.py (this notebook reloads it when
# it changes). Run the next cell to check it.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("dot_attention_forward", "dot_attention_backward", "additive_attention_forward",
                            "additive_attention_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The grader compares your functions with PyTorch. Here is the check you can always run
# yourself: a numerical gradient (`gradient_check.py`) on small inputs, with a mask that hides
# some positions of the first row. Every relative error should be around `1e-8` or smaller.

# %%
gc = torch.Generator().manual_seed(3)


def randn(*shape):
    return torch.randn(*shape, generator=gc, dtype=DTYPE)


def gradient_errors(forward, backward, args, names, mask=None):
    """Relative error of each gradient of backward against a numerical gradient.

    forward(*args, mask=mask) returns (output, ..., cache); backward(dout, cache) returns the
    gradients of args[0], args[1], ... in order; names labels the first len(names) of them.
    """
    result = forward(*args, mask=mask)
    dout = randn(*result[0].shape)
    grads = backward(dout, result[-1])
    errors = {}
    for i, name in enumerate(names):
        def f(a, i=i):
            return forward(*args[:i], a, *args[i + 1:], mask=mask)[0]
        errors[name] = rel_error(grads[i], eval_numerical_gradient_array(f, args[i], dout))
    return errors


Nc, Lc, Dc, Ac = 2, 5, 3, 4  # small sizes for the checks
mask_c = torch.ones(Nc, Lc, dtype=torch.bool)
mask_c[0, 3:] = False  # the first row may only attend to positions 0, 1, 2
q_c, K_c, V_c = randn(Nc, Dc), randn(Nc, Lc, Dc), randn(Nc, Lc, Dc)

grad_errors = {
    "dot": gradient_errors(dot_attention_forward, dot_attention_backward, (q_c, K_c, V_c), ("q", "K", "V"), mask_c),
    "additive": gradient_errors(additive_attention_forward, additive_attention_backward,
                                (q_c, K_c, V_c, randn(Dc, Ac), randn(Dc, Ac), randn(Ac)),
                                ("q", "K", "V", "Wq", "Wk", "v"), mask_c),
}
for head, errors in grad_errors.items():
    print("%-9s" % head, "  ".join("d%s %.1e" % item for item in errors.items()))

# %% [markdown]
# ## 2. The task and the model
#
# **Task.** A sequence of $L = 8$ tokens drawn uniformly from $C = 10$ symbols; the target is the
# same sequence reversed. Output step $t$ (counting from 0) must produce the token at encoder
# position $L-1-t$.
#
# **Model.** Everything is as small as the task allows, so that what attention does is easy to see:
#
# - *Encoder*: the state of position $l$ is a token embedding plus a position embedding,
#   $h_{e,l} = E_{tok}[x_l] + P_{enc}[l]$ (both learned, width $E = 16$). (A real encoder would
#   run an RNN over the embeddings, e.g. your `rnn_forward`; here it would only blur which
#   position holds which token.) The encoder states are both the keys and the values:
#   $K = V = h_e$.
# - *Decoder*: the query of output step $t$ is a learned vector $Q_{dec}[t]$. It stands for the
#   decoder's state $h_{d[t-1]}$ of the lecture; for this task all the decoder needs to know is
#   which step it is at.
# - *Output*: the context goes through a linear layer and a softmax over the $C$ symbols; the
#   loss is the cross-entropy, averaged over all sequences and steps.
#
# All $N$ sequences $\times$ $L$ decoder steps are handled in one call of the attention layer:
# the batch of queries has $N L$ rows (row $n L + t$ is step $t$ of sequence $n$), each with its own
# copy of its sequence's encoder states. The backward pass runs the same graph in reverse:
# softmax-cross-entropy $\to$ linear layer $\to$ your attention backward $\to$ `dq` (summed
# into $Q_{dec}$) and `dK + dV` (the keys and the values are the same states) $\to$ the two
# embeddings.

# %%
C, L, E, A = 10, 8, 16, 16  # symbols, sequence length, model width, width of the additive head
BATCH, TEST = 64, 512  # sequences per training step; sequences in the test batch
STEPS = 120 if FAST else 400  # training steps (Adam)
LR = 0.03


def make_batch(generator, n):
    """n random sequences x (n, L) and their reversals y (n, L)."""
    x = torch.randint(0, C, (n, L), generator=generator)
    return x, x.flip(1)


def init_model(generator, kind, heads=1, outputs=1):
    """Parameters for attention `kind` ("dot", "additive", "hard" or "multihead")."""
    def rand(*shape, fan_in):
        return torch.randn(*shape, generator=generator, dtype=DTYPE) / math.sqrt(fan_in)

    P = {"W_tok": rand(C, E, fan_in=E), "P_enc": rand(L, E, fan_in=E), "Q_dec": rand(L, E, fan_in=E),
         "W_out": rand(E, outputs * C, fan_in=E), "b_out": torch.zeros(outputs * C, dtype=DTYPE)}
    if kind == "additive":
        P.update(Wq=rand(E, A, fan_in=E), Wk=rand(E, A, fan_in=E), v=rand(A, fan_in=A))
    if kind == "multihead":
        P.update({name: rand(E, E, fan_in=E) for name in ("Wq", "Wk", "Wv", "Wo")})
    return P


def softmax_cross_entropy(scores, y):
    """Mean cross-entropy of scores (M, C) against y (M,); its gradient; the predictions."""
    M = scores.shape[0]
    log_probs = scores - torch.logsumexp(scores, dim=1, keepdim=True)  # (M, C)
    loss = -log_probs[torch.arange(M), y].mean()
    dscores = log_probs.exp()  # softmax
    dscores[torch.arange(M), y] -= 1
    return loss, dscores / M, log_probs.argmax(dim=1)


def model_step(P, x, targets, kind, heads=1, mask=None, backward=True):
    """Loss, accuracy, attention weights and (if backward) gradients of the model on one batch.

    x: (N, L) input tokens. targets: a list of (N, L) target tokens, one per output (the
    reversal task has one; the multi-head task of section 5 has two). kind: "dot",
    "additive", "hard" or "multihead". mask: optional (N * L, L) bool, True where allowed.
    Returns loss, accuracy (one per output), weights (N, L, L) or (N, L, heads, L), grads.
    """
    N = len(x)  # sequences in the batch
    # encoder: K = V = token embedding + position embedding, one copy per decoder step
    h = P["W_tok"][x] + P["P_enc"]  # (N, L, E)
    K = h.unsqueeze(1).expand(N, L, L, E).reshape(N * L, L, E)  # (N L, L, E), row n L + t
    q = P["Q_dec"].repeat(N, 1)  # (N L, E): step t's query for every sequence
    if kind == "dot":
        context, weights, cache = dot_attention_forward(q, K, K, mask)
    elif kind == "additive":
        context, weights, cache = additive_attention_forward(q, K, K, P["Wq"], P["Wk"], P["v"], mask)
    elif kind == "hard":
        context, index, cache = hard_attention_forward(q, K, K, mask)
        weights = torch.zeros(N * L, L, dtype=DTYPE)
        weights[torch.arange(N * L), index] = 1.0  # the chosen position, as a one-hot row
    elif kind == "multihead":
        context, weights, cache = multihead_attention_forward(q, K, K, P["Wq"], P["Wk"], P["Wv"], P["Wo"],
                                                              heads, mask)
    scores = context @ P["W_out"] + P["b_out"]  # (N L, outputs C)
    loss, accuracy, dscores = 0.0, [], []
    for j, y in enumerate(targets):  # one softmax per output
        loss_j, dscores_j, predicted = softmax_cross_entropy(scores[:, j * C:(j + 1) * C], y.reshape(-1))
        loss = loss + loss_j
        accuracy.append(float((predicted == y.reshape(-1)).double().mean()))
        dscores.append(dscores_j)
    weights = weights.reshape(N, L, *weights.shape[1:])  # (N, L, L) or (N, L, heads, L)
    if not backward:
        return float(loss), accuracy, weights, None
    dscores = torch.cat(dscores, dim=1)  # (N L, outputs C)
    grads = {"W_out": context.T @ dscores, "b_out": dscores.sum(0)}
    dcontext = dscores @ P["W_out"].T  # (N L, E)
    if kind == "dot":
        dq, dK, dV = dot_attention_backward(dcontext, cache)
    elif kind == "additive":
        dq, dK, dV, grads["Wq"], grads["Wk"], grads["v"] = additive_attention_backward(dcontext, cache)
    elif kind == "hard":
        dq, dK, dV = hard_attention_backward(dcontext, cache)
    elif kind == "multihead":
        dq, dK, dV, grads["Wq"], grads["Wk"], grads["Wv"], grads["Wo"] = multihead_attention_backward(dcontext, cache)
    dh = (dK + dV).reshape(N, L, L, E).sum(1)  # (N, L, E): keys and values are the same states
    grads["Q_dec"] = dq.reshape(N, L, E).sum(0)  # (L, E): summed over the sequences
    grads["P_enc"] = dh.sum(0)  # (L, E)
    grads["W_tok"] = torch.zeros_like(P["W_tok"]).index_add_(0, x.reshape(-1), dh.reshape(-1, E))  # (C, E)
    return float(loss), accuracy, weights, grads


# %% [markdown]
# Before training, check the wiring: the gradients of the whole model (your attention backward
# plus the code above) against numerical gradients of its loss, on three sequences. Some entries
# of these gradients are nearly zero, and the entry-by-entry `rel_error` of such an entry only
# measures rounding noise, so here we compare whole tensors: $\|a - b\| / (\|a\| + \|b\|)$.
# A correct model gives about `1e-8` or less; a wiring mistake gives something near 1.

# %%
def tensor_rel_error(a, b):
    """Relative error of two whole tensors: |a - b| / (|a| + |b|), Frobenius norms."""
    return float((a - b).norm() / (a.norm() + b.norm()).clamp_min(1e-12))


gw = torch.Generator().manual_seed(4)
x_small, y_small = make_batch(gw, 3)
wiring_errors = {}
for kind, heads in (("dot", 1), ("additive", 1), ("multihead", 2)):
    P_small = init_model(gw, kind, heads=heads)
    _, _, _, grads = model_step(P_small, x_small, [y_small], kind, heads)
    for name in ("Q_dec", "W_tok", "P_enc", "W_out", "Wq", "Wo"):
        if name in P_small:
            def loss_of(p, name=name):
                return model_step({**P_small, name: p}, x_small, [y_small], kind, heads, backward=False)[0]
            wiring_errors[kind, name] = tensor_rel_error(grads[name], eval_numerical_gradient(loss_of, P_small[name]))
    print("%-10s" % kind, "  ".join("d%s %.1e" % (name, e) for (k, name), e in wiring_errors.items() if k == kind))

# %% [markdown]
# ## 3. Training with soft attention, global and local
#
# Adam, written by hand, updates every parameter from the gradients of `model_step`. We train
# three models from the same start: dot-product and additive attention over all $L$
# positions (global), and dot-product attention restricted by your `local_attention_mask` to a
# window of $\pm 1$ around the position the lecture's *local* attention would predict, here the
# known center $L-1-t$.


# %%
def adam(P, grads, state, lr=LR, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step; returns new parameters (P is not modified) and updates state in place."""
    state["t"] = state.get("t", 0) + 1
    new = {}
    for name, p in P.items():
        m = state[name, "m"] = beta1 * state.get((name, "m"), 0) + (1 - beta1) * grads[name]
        v = state[name, "v"] = beta2 * state.get((name, "v"), 0) + (1 - beta2) * grads[name] ** 2
        m_hat, v_hat = m / (1 - beta1 ** state["t"]), v / (1 - beta2 ** state["t"])
        new[name] = p - lr * m_hat / (v_hat.sqrt() + eps)
    return new


def local_mask(n, window):
    """Local attention for n sequences: step t may attend to positions within `window` of L-1-t."""
    centers = (L - 1 - torch.arange(L)).repeat(n)  # (n L,) the known alignment of every row
    return local_attention_mask(L, centers, window)  # (n L, L)


x_test, y_test = make_batch(torch.Generator().manual_seed(123), TEST)  # the same test batch for all


def train(kind, steps=STEPS, heads=1, window=None, task="reverse", seed=0):
    """Train a fresh model; return its parameters, training losses and test results."""
    g = torch.Generator().manual_seed(seed)
    P, state, history = init_model(g, kind, heads, outputs=2 if task == "reverse+copy" else 1), {}, []
    P0 = dict(P)
    for step in range(steps):
        x, y = make_batch(g, BATCH)
        targets = [y, x] if task == "reverse+copy" else [y]
        mask = None if window is None else local_mask(BATCH, window)
        loss, _, _, grads = model_step(P, x, targets, kind, heads, mask)
        P = adam(P, grads, state)
        history.append(loss)
    targets = [y_test, x_test] if task == "reverse+copy" else [y_test]
    mask = None if window is None else local_mask(TEST, window)
    loss, accuracy, weights, _ = model_step(P, x_test, targets, kind, heads, mask, backward=False)
    return {"params": P, "initial": P0, "losses": history, "test_loss": loss, "accuracy": accuracy,
            "weights": weights.mean(0)}  # weights averaged over the test sequences


def weight_on(weights, positions):
    """Mean attention weight that step t puts on position positions[t] (weights: (L, L))."""
    return float(weights[torch.arange(L), positions].mean())


REVERSED = L - 1 - torch.arange(L)  # the position step t should attend to
start = time.time()
models = {"dot (global)": train("dot"), "additive (global)": train("additive"),
          "dot, local (window 1)": train("dot", window=1)}
print("trained %d models, %d steps each, in %.1f s" % (len(models), STEPS, time.time() - start))
for name, m in models.items():
    print("%-22s test accuracy %.3f   mean weight on position L-1-t: %.3f"
          % (name, m["accuracy"][0], weight_on(m["weights"], REVERSED)))

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), gridspec_kw={"width_ratios": [1.3, 1, 1, 1]})
for name, m in models.items():
    axes[0].semilogy(m["losses"], label=name)
axes[0].set_xlabel("training step")
axes[0].set_ylabel("training loss")
axes[0].set_title("training loss")
axes[0].grid(alpha=0.3, which="both")
axes[0].legend()
for ax, (name, m) in zip(axes[1:], models.items()):
    im = ax.imshow(m["weights"], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(name)
    ax.set_xlabel("encoder position l")
axes[1].set_ylabel("decoder step t")
fig.colorbar(im, ax=axes[1:], shrink=0.8, label="attention weight (mean over test sequences)")
plt.show()

# %% [markdown]
# **What to see.** All three heat maps are bright on the anti-diagonal $l = L-1-t$ (the
# alignment of a reversal) and dark elsewhere: each decoder step found its source position, and
# the test accuracy is (close to) 1. The local model's weights are exactly zero outside its
# 3-wide band (your mask), and it learns first: it only has to choose among 3 positions, not 8,
# so twenty steps in its loss is already far below the global models' (see the left plot).

# %% [markdown]
# ## 4. Hard attention
#
# Hard attention uses only the single most relevant encoder state: the position with the largest
# score $K_l \cdot q$. Your `hard_attention_forward` returns that index; its map is one-hot. Two
# experiments: (a) the dot-product model trained above, decoded with hard attention instead
# of soft; (b) a model trained *with* hard attention from the start.

# %% [raw]
# # BEGIN QUESTION
# name: attention_local_hard_code
# points: 0

# %% [markdown]
# **Question 4.2 (code, graded by the autograder).** Implement `local_attention_mask`,
# `hard_attention_forward` and `hard_attention_backward` in `attention.py`. (Section 3 already
# used your mask.)

# %%
# Nothing to write in this cell: your code goes in attention.py. Run the next cell to check it.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("local_attention_mask", "hard_attention_forward", "hard_attention_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
grad_errors["hard"] = gradient_errors(hard_attention_forward, hard_attention_backward, (q_c, K_c, V_c),
                                      ("q", "K", "V"), mask_c)
print("hard      ", "  ".join("d%s %.1e" % item for item in grad_errors["hard"].items()),
      " (dq and dK are zero, and so is the numerical gradient)")

soft = models["dot (global)"]
_, hard_accuracy, hard_weights, _ = model_step(soft["params"], x_test, [y_test], "hard", backward=False)
hard_on_target = float((hard_weights[:, torch.arange(L), REVERSED] == 1).double().mean())
print("(a) the dot model decoded with hard attention: accuracy %.3f, index = L-1-t in %.1f%% of the steps"
      % (hard_accuracy[0], 100 * hard_on_target))

scratch = train("hard")
dQ = float((scratch["params"]["Q_dec"] - scratch["initial"]["Q_dec"]).abs().max())
print("(b) trained with hard attention: accuracy %.3f, mean weight on L-1-t %.3f; Q_dec moved by %.1e"
      % (scratch["accuracy"][0], weight_on(scratch["weights"], REVERSED), dQ))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
for ax, w, title in ((axes[0], hard_weights.mean(0), "(a) soft-trained dot model, hard decoding"),
                     (axes[1], scratch["weights"], "(b) trained with hard attention")):
    im = ax.imshow(w, cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("encoder position l")
    ax.set_ylabel("decoder step t")
fig.colorbar(im, ax=axes, shrink=0.8, label="share of test sequences choosing l")
plt.show()

# %% [markdown]
# **What to see.** (a) Once a soft model has learned where to look, the argmax of its scores is
# the right position at every step: hard decoding is exact, and its map is a one-hot
# anti-diagonal. (b) Trained with hard attention from the start, the queries `Q_dec` do not
# move at all, the map is scattered, and the accuracy stays far below the soft model's: some
# steps pick the right position, most do not. Question 4.3 asks why.

# %% [raw]
# # BEGIN QUESTION
# name: attention_hard_gradient
# manual: true
# points: 2

# %% [markdown]
# **Question 4.3 (written).** `hard_attention_backward` returns `dq` and `dK` as zeros. Why is
# that the exact gradient of the context with respect to `q` and `K`, not an approximation?
# What does it mean for learning *where* to attend, as in experiment (b)? How could a model
# with hard attention still be trained (the lecture: "with some tricks to ensure the whole
# pipeline stays differentiable")?

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** The context is `V[n, index[n]]` with `index = argmax_l K_l . q`. The argmax is
# piecewise constant: a small enough change of `q` or `K` does not change which score is the
# largest (except exactly at a tie, a set of measure zero), so the context does not change
# either, and its derivative with respect to `q` and `K` is exactly 0 almost everywhere. The
# only gradient is the one with respect to the chosen value, `dV[n, index[n]] = dcontext[n]`.
# So in this API hard attention needs no gradient to `q` and `K`: there is none to give.
#
# The consequence is that the parts of the model that decide *where* to look (here `Q_dec`,
# and the key side of the encoder states) get no learning signal from the loss. In
# experiment (b) `Q_dec` did not move at all, the positions chosen at initialisation stayed
# (up to the drift through the values), and the accuracy stayed low. Ways around it: train
# with soft attention and switch to hard attention at test time (experiment (a), which is
# exact once the soft weights are peaked); treat the choice as a sample and train it with a
# score-function (REINFORCE) estimator; or relax the argmax to a differentiable approximation
# (a softmax with a low temperature, Gumbel-softmax) during training.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Multi-head attention
#
# The lecture's last pitfall: "the shared parameters of the attention head might only learn to
# pick out certain dependencies". To see it, give every output step **two** things to report:
# the reversed token (at position $L-1-t$, as before) *and* the token at its own position $t$
# (a copy). The model gets a second softmax output; the loss is the sum of the two
# cross-entropies. We train `multihead_attention_forward` with 1, 2 and 4 heads; with one head
# it is a single scaled dot-product head with projections (`num_heads = 1`). All three have the
# same number of parameters.

# %% [raw]
# # BEGIN QUESTION
# name: attention_multihead_code
# points: 0

# %% [markdown]
# **Question 4.4 (code, graded by the autograder).** Implement `multihead_attention_forward`
# and `multihead_attention_backward` in `attention.py`.

# %%
# Nothing to write in this cell: your code goes in attention.py. Run the next cell to check it.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("multihead_attention_forward", "multihead_attention_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
Em = 4  # model width for the numerical check: 2 heads of width 2
grad_errors["multihead"] = gradient_errors(
    multihead_attention_forward, multihead_attention_backward,
    (randn(Nc, Em), randn(Nc, Lc, Em), randn(Nc, Lc, Em), randn(Em, Em), randn(Em, Em), randn(Em, Em),
     randn(Em, Em), 2),
    ("q", "K", "V", "Wq", "Wk", "Wv", "Wo"), mask_c)
print("multihead", "  ".join("d%s %.1e" % item for item in grad_errors["multihead"].items()))

COPY = torch.arange(L)  # the position of the copied token
start = time.time()
multi = {heads: train("multihead", heads=heads, task="reverse+copy") for heads in (1, 2, 4)}
print("trained 3 models in %.1f s" % (time.time() - start))
for heads, m in multi.items():
    w = m["weights"]  # (L, heads, L)
    print("%d head%s: test accuracy reversed %.3f, copied %.3f;  weight on L-1-t / on t per head: %s"
          % (heads, "s" if heads > 1 else " ", m["accuracy"][0], m["accuracy"][1],
             ", ".join("%.2f/%.2f" % (weight_on(w[:, j], REVERSED), weight_on(w[:, j], COPY)) for j in range(heads))))

# %%
fig, axes = plt.subplots(3, 4, figsize=(13, 10))
for row, (heads, m) in enumerate(multi.items()):
    for j in range(4):
        ax = axes[row, j]
        if j >= heads:
            ax.axis("off")
            continue
        im = ax.imshow(m["weights"][:, j], cmap="viridis", vmin=0, vmax=1)
        ax.set_title("%d head%s: head %d" % (heads, "s" if heads > 1 else "", j), fontsize=10)
        ax.set_xlabel("encoder position l")
        if j == 0:
            ax.set_ylabel("decoder step t")
    axes[row, 0].text(-0.45, 0.5, "accuracy\nreversed %.2f\ncopied %.2f" % tuple(m["accuracy"]),
                      transform=axes[row, 0].transAxes, ha="right", va="center")
fig.colorbar(im, ax=axes, shrink=0.6, label="attention weight (mean over test sequences)")
plt.show()

# %% [markdown]
# **What to see.** With one head, the map has weight on both diagonals and the model gets at
# most one of the two outputs right. With two heads, one head attends to the anti-diagonal (the
# reversed token) and the other to the diagonal (the copy), and both outputs are right. With
# four heads, two heads specialise, one per relation, which is all the task needs; the other
# two are free to do anything (here they spread their weight over both).

# %% [raw]
# # BEGIN QUESTION
# name: attention_one_head
# manual: true
# points: 2

# %% [markdown]
# **Question 4.5 (written).** What goes wrong with a single shared attention head on the
# reverse-and-copy task, and how do several heads fix it? Explain it with the heat maps and the
# accuracies above.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** A head computes *one* softmax over the positions for each decoder step, so its
# context is one weighted average of the value vectors. The task needs two relations at once
# (step $t$ must read position $L-1-t$ and position $t$), so the single head has to split its
# weight between them, or favour one. An average $w\,h_{e,L-1-t} + (1-w)\,h_{e,t}$ blends the two
# tokens into one vector: for $w \approx 1/2$ it is nearly symmetric in the two tokens, so the
# linear output layer cannot tell which token was at which position, and for $w$ near 0 or 1
# one token is lost. That is what the one-head model shows: its map has weight on both
# diagonals, one output is mostly right and the other is far below the two-head model's.
#
# Multi-head attention runs several heads side by side, each with its own projections of the
# query, keys and values and its own softmax. One head can attend to $L-1-t$ and another to
# $t$; their outputs are concatenated (not averaged) and the output projection $W_o$ keeps
# them apart, so both tokens reach the output layer. The heat maps show exactly this
# specialisation: one head per relation, both outputs right, with the same number of
# parameters (each head is $E/h$ wide).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Results
#
# The numbers this notebook produced, checked against the ranges we expect from a correct
# `attention.py` (the runs are seeded, so a correct implementation lands well inside them).
# The ranges are the same for the full run (400 training steps per model) and the
# `HANDOUT_FAST=1` run (120 steps): this task is learned in about 100 steps.
#
# | result | expected |
# |---|---|
# | largest relative error, numerical checks of the four backward passes | below 1e-6 |
# | largest relative error, numerical check of the whole model's gradients | below 1e-6 |
# | test accuracy, dot / additive / local soft attention | at least 0.95 |
# | mean weight on position $L-1-t$, dot / additive / local | at least 0.8 |
# | accuracy of the dot model decoded with hard attention | at least 0.95 |
# | accuracy of the model trained with hard attention | below 0.75 |
# | how far `Q_dec` moved when trained with hard attention | exactly 0 |
# | one head: accuracy of the worse of its two outputs | below 0.4 |
# | two heads: accuracy of both outputs | at least 0.95 |
# | two heads: the larger weight on $L-1-t$ over the heads, and on $t$ | at least 0.7 |

# %%
two = multi[2]["weights"]  # (L, 2, L)
RESULTS = {
    "gradcheck_layers": max(max(errors.values()) for errors in grad_errors.values()),
    "gradcheck_model": max(wiring_errors.values()),
    "accuracy_dot": models["dot (global)"]["accuracy"][0],
    "accuracy_additive": models["additive (global)"]["accuracy"][0],
    "accuracy_local": models["dot, local (window 1)"]["accuracy"][0],
    "weight_dot": weight_on(models["dot (global)"]["weights"], REVERSED),
    "weight_additive": weight_on(models["additive (global)"]["weights"], REVERSED),
    "weight_local": weight_on(models["dot, local (window 1)"]["weights"], REVERSED),
    "accuracy_hard_decoding": hard_accuracy[0],
    "accuracy_hard_trained": scratch["accuracy"][0],
    "hard_trained_Q_dec_change": dQ,
    "one_head_worse_accuracy": min(multi[1]["accuracy"]),
    "two_heads_worse_accuracy": min(multi[2]["accuracy"]),
    "two_heads_weight_reversed": max(weight_on(two[:, j], REVERSED) for j in range(2)),
    "two_heads_weight_copy": max(weight_on(two[:, j], COPY) for j in range(2)),
}
EXPECTED = {
    "gradcheck_layers": (0, 1e-6), "gradcheck_model": (0, 1e-6),
    "accuracy_dot": (0.95, 1), "accuracy_additive": (0.95, 1), "accuracy_local": (0.95, 1),
    "weight_dot": (0.8, 1), "weight_additive": (0.8, 1), "weight_local": (0.8, 1),
    "accuracy_hard_decoding": (0.95, 1), "accuracy_hard_trained": (0, 0.75), "hard_trained_Q_dec_change": (0, 0),
    "one_head_worse_accuracy": (0, 0.4), "two_heads_worse_accuracy": (0.95, 1),
    "two_heads_weight_reversed": (0.7, 1), "two_heads_weight_copy": (0.7, 1),
}

for name, value in RESULTS.items():
    low, high = EXPECTED[name]
    print("%-28s %10.4g   expected %s to %s" % (name, value, low, high))
outside = ["%s = %.4g (expected %s to %s)" % (name, RESULTS[name], *EXPECTED[name])
           for name in EXPECTED if not EXPECTED[name][0] <= RESULTS[name] <= EXPECTED[name][1]]
assert not outside, ("these results are outside the ranges stated above (%s run): %s. Check the functions "
                     "they come from with python check.py attention." % ("FAST" if FAST else "full",
                                                                         "; ".join(outside)))
print("all results inside the expected ranges")
