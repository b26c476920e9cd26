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
# name: 03_tbptt_language_model
# requirements: null
# export_cell: false
# check_all_cell: false
# run_tests: false
# solutions_pdf: false
# generate: false
# tests:
#   ok_format: false

# %% [markdown]
# # Notebook 3: truncated backpropagation through time and gradient clipping
#
# In this notebook you train a word-level language model, the vanilla RNN of the lecture, on the
# first chapter of Charles Dickens' *A Tale of Two Cities*, with the two tools from the lecture's
# slides on training RNNs:
#
# - **Truncated backpropagation**: run forward and backward through *chunks* of the sequence
#   instead of the whole sequence; carry hidden states forward through chunks; truncate backprop
#   after a few ($k$) steps.
# - **Gradient clipping**: scale the gradient if its norm is too big.
#
# The model (see `tbptt.py` and the API) reads one word index $x_t$ per step, looks up its
# vector $e_t = W_{embed}[x_t]$, updates the hidden state and scores every word of the
# vocabulary:
#
# $$h_t = \tanh(e_t W_x + h_{t-1} W_h + b), \qquad s_t = h_t W_{out} + b_{out}$$
#
# (the lecture's $h_t = \tanh(W_{hh} h_{t-1} + W_{xh} x_t)$ written with row vectors and
# weights multiplying from the right, as in the code: $W_h = W_{hh}^\top$). The loss of a
# chunk is `temporal_softmax_loss` of the scores against the next words, summed over the
# chunk's steps and averaged over the batch.
#
# **What you write:** `clip_grad_norm`, `truncated_bptt_grads` and `tbptt_train` in `tbptt.py`
# (they use your `rnn_layers.py`). This notebook only *uses* them, and asks two written
# questions. No autograd anywhere: every gradient here comes from your backward passes.
#
# The whole notebook runs in about a minute on a laptop CPU.

# %%
import os
import sys

sys.path.insert(0, os.environ.get("RNN_ASSIGNMENT_DIR", "."))  # the folder with your .py files
DATA = os.path.join(os.environ.get("RNN_ASSIGNMENT_DIR", "."), "data")
FAST = os.environ.get("HANDOUT_FAST") == "1"  # a shorter run (the kit's own tests set it)

import collections
import math
import re
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

gradient_check, rnn_layers, tbptt = load("gradient_check"), load("rnn_layers"), load("tbptt")
eval_numerical_gradient, rel_error = gradient_check.eval_numerical_gradient, gradient_check.rel_error
rnn_forward, rnn_backward, rnn_step_forward = rnn_layers.rnn_forward, rnn_layers.rnn_backward, rnn_layers.rnn_step_forward
temporal_affine_forward, word_embedding_forward = rnn_layers.temporal_affine_forward, rnn_layers.word_embedding_forward
clip_grad_norm, tbptt_train, truncated_bptt_grads = tbptt.clip_grad_norm, tbptt.tbptt_train, tbptt.truncated_bptt_grads

print("FAST run" if FAST else "full run", "| torch", torch.__version__)

# %% [markdown]
# ## 1. The text, the vocabulary and the batches
#
# The text is lowercased and cut into words and the punctuation marks `. , ;`. Words that occur
# only once in the chapter are replaced by `<unk>` (unknown): with about a thousand words of
# text, a word seen once cannot be learned anyway, and the vocabulary stays small.
#
# The token stream is then cut into `N` rows of `T` consecutive tokens: row `n` is the `n`-th
# piece of the chapter. `x` holds the input words and `y` the words that follow them: `y[:, t]`
# is the word to predict after reading `x[:, t]`.

# %%
with open(os.path.join(DATA, "tale_of_two_cities_ch1.txt"), encoding="utf-8") as f:
    raw = f.read()
chapter = raw.split("The Period", 1)[1]  # drop the title lines
tokens = re.findall(r"[a-z]+(?:'[a-z]+)?|[.,;]", chapter.lower())
counts = collections.Counter(tokens)

MIN_COUNT = 2  # rarer words become <unk>
vocab = ["<unk>"] + sorted(w for w, c in counts.items() if c >= MIN_COUNT)
word_to_id = {w: i for i, w in enumerate(vocab)}
ids = torch.tensor([word_to_id.get(w, 0) for w in tokens])  # (number of tokens,) int64
V = len(vocab)

N = 8  # rows of the batch
T = (len(ids) - 1) // N  # time steps per row
x_all = ids[:N * T].reshape(N, T)  # (N, T) input words
y_all = ids[1:N * T + 1].reshape(N, T)  # (N, T) the next words


def decode(word_ids):
    """Word ids -> text, with punctuation attached to the word before it."""
    words = [vocab[int(i)] for i in word_ids]
    return re.sub(r" ([.,;])", r"\1", " ".join(words))


print("%d tokens, %d distinct; vocabulary V = %d (%d words seen twice or more, plus <unk>)"
      % (len(tokens), len(counts), V, V - 1))
print("share of tokens that are <unk>: %.0f%%" % (100.0 * float((ids == 0).double().mean())))
print("batches: x and y of shape (N, T) = (%d, %d)" % (N, T))
print("row 0 starts:", decode(x_all[0, :24]), "...")
print("row 1 starts:", decode(x_all[1, :24]), "...")
print("a model that guesses uniformly has a loss of ln V = %.2f per token" % math.log(V))

# %% [markdown]
# ## 2. Your code: `tbptt.py`
#
# Implement `clip_grad_norm`, `truncated_bptt_grads` and `tbptt_train` in `tbptt.py` (the
# docstrings and the API give the exact semantics). The check below runs their public checks,
# the same ones as `python check.py tbptt`, with the grader's messages.

# %% [raw]
# # BEGIN QUESTION
# name: tbptt_code
# points: 0

# %% [markdown]
# **Question 3.1 (code, graded by the autograder).** Implement the three functions of `tbptt.py`
# and run the check below until it passes.

# %%
# Nothing to write in this cell: your code goes in tbptt.py (this notebook reloads it when it
# changes). Run the next cell to check it.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("clip_grad_norm", "truncated_bptt_grads", "tbptt_train")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. What truncation changes, checked numerically
#
# Truncation changes only the *backward* pass. Every chunk starts from the hidden state the
# previous chunk ended with, so the forward pass, and the loss, are the same for every chunk
# length `k`. The gradient is not: the gradient that reaches a chunk's initial state is
# dropped.
#
# On a tiny model we compare the gradients of `truncated_bptt_grads` with a numerical gradient
# of the loss (`eval_numerical_gradient` from `gradient_check.py`). With `k = T` (one chunk) it
# is ordinary backpropagation through time and must match the numerical gradient to about
# `1e-8`. With `k < T` some of the gradients differ from the true gradient, and some do not
# (question 3.2 asks why).


# %%
def init_params(V, D, H, generator, wh_scale=1.0):
    """Parameters of the language model: small random weights, zero biases (float64)."""
    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=DTYPE)

    return {"W_embed": randn(V, D), "Wx": randn(D, H) / math.sqrt(D),
            "Wh": wh_scale * randn(H, H) / math.sqrt(H), "b": torch.zeros(H, dtype=DTYPE),
            "W_out": randn(H, V) / math.sqrt(H), "b_out": torch.zeros(V, dtype=DTYPE)}


g = torch.Generator().manual_seed(1)
Vt, Dt, Ht, Nt, Tt = 7, 3, 5, 2, 8  # a tiny model and sequence
tiny = init_params(Vt, Dt, Ht, g)
xt = torch.randint(0, Vt, (Nt, Tt), generator=g)
yt = torch.randint(0, Vt, (Nt, Tt), generator=g)
h0t = 0.5 * torch.randn(Nt, Ht, generator=g, dtype=DTYPE)


def tiny_loss(name):
    """The loss as a function of one parameter tensor (the forward pass is the same for every k)."""
    return lambda p: truncated_bptt_grads(xt, yt, h0t, {**tiny, name: p}, Tt)[0]


numerical = {name: eval_numerical_gradient(tiny_loss(name), tiny[name].clone()) for name in tiny}
tiny_errors = {}
print("relative error of truncated_bptt_grads against the numerical gradient (T = %d):" % Tt)
print("   k    loss    " + "  ".join("%9s" % name for name in tiny))
for k in (Tt, 4, 2, 1):
    loss, grads, _ = truncated_bptt_grads(xt, yt, h0t, tiny, k)
    tiny_errors[k] = {name: rel_error(grads[name], numerical[name]) for name in tiny}
    print("%4d  %7.4f  " % (k, float(loss)) + "  ".join("%9.1e" % tiny_errors[k][name] for name in tiny))

# %% [markdown]
# The same comparison on the real model, at its initial weights: the cosine between the
# truncated gradient and the full one (`k = T`, one chunk of all the time steps). A cosine of 1
# means the same direction.

# %%
D, H = 32, 64  # word-vector size and hidden size of the language model
model0 = init_params(V, D, H, torch.Generator().manual_seed(0))
h0 = torch.zeros(N, H, dtype=DTYPE)
full_loss, full_grads, _ = truncated_bptt_grads(x_all, y_all, h0, model0, T)


def cosine(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


cosines = {}
print("   k   cos(Wh)  cos(W_embed)  cos(W_out)")
for k in (1, 2, 5, 10, 25, 50, T):
    _, grads, _ = truncated_bptt_grads(x_all, y_all, h0, model0, k)
    cosines[k] = {name: cosine(grads[name], full_grads[name]) for name in ("Wh", "W_embed", "W_out")}
    print("%4d   %6.3f      %6.3f       %6.3f" % (k, cosines[k]["Wh"], cosines[k]["W_embed"], cosines[k]["W_out"]))

# %% [raw]
# # BEGIN QUESTION
# name: tbptt_truncation
# manual: true
# points: 2

# %% [markdown]
# **Question 3.2 (written).** Truncated backpropagation with chunks of `k` steps computes the
# same loss as full backpropagation through time, but not the same gradient. What exactly does
# it give up? Use the tables above: which parameters' gradients change with `k`, which do not,
# and why? What does the model lose the ability to *learn*, and what does it gain in exchange?

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** Truncation drops every gradient path that crosses a chunk boundary backwards: the
# carried state is a constant, so the loss at step $t$ assigns no credit to words read, or state
# updates made, before the start of its chunk. A dependency between a word and a prediction
# more than $k$ steps later (less, for a step near the start of its chunk) contributes nothing
# to the update. The model can still *use* older information (the carried state holds it, and
# the forward pass and the loss are exact for every $k$), but it is never *trained* to store
# information for longer than $k$ steps, nor to use it.
#
# This is why `W_out` and `b_out` get exact gradients for every `k`: they act on each $h_t$
# directly, with no path back through time. The recurrent parameters (`Wh`, `Wx`, `b`) and the
# embeddings reach the loss through earlier steps, so their gradients lose the cross-boundary
# terms: the relative error against the numerical gradient is large for `k < T`, and the
# cosine with the full gradient rises towards 1 as `k` grows.
#
# In exchange, memory and compute per update are $O(k)$ instead of $O(T)$, the parameters are
# updated after every chunk instead of once per sequence, and the gradient passes through at
# most $k$ factors of $W_h$ and $\tanh'$, so it is less prone to explode.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. Training with several chunk lengths, with and without clipping
#
# Each *epoch* is one call of your `tbptt_train` over the whole batch, from `h0 = 0`: it cuts
# the `T` steps into chunks of `k`, and after every chunk it clips the chunk's gradient and takes
# one SGD step. We train six models from the same initial weights: `k` = 5, 10 and 25, each with
# clipping (`max_norm = 1`) and without (`max_norm = 1e9`, which never clips), all with the same
# learning rate. The curves show each chunk's loss divided by its length (the loss per token),
# smoothed over one epoch, against the number of tokens read so far.
#
# First, how large are the gradients? The total norm of the first chunk's gradient at the
# initial weights, from your `clip_grad_norm`:

# %%
K_VALUES = (5, 10, 25)
LR = 0.2
MAX_NORM = 1.0  # clipping
NO_CLIP = 1e9  # larger than any gradient norm here: never clips
EPOCHS = 15 if FAST else 200

for k in K_VALUES:
    _, grads, _ = truncated_bptt_grads(x_all[:, :k], y_all[:, :k], h0, model0, k)
    clipped, total_norm = clip_grad_norm(grads, MAX_NORM)
    after = math.sqrt(sum(float((gr * gr).sum()) for gr in clipped.values()))
    print("k = %2d: gradient norm %5.2f, after clip_grad_norm(max_norm=%g): %.3f"
          % (k, float(total_norm), MAX_NORM, after))

# %% [markdown]
# The chunk's loss is a *sum* over its `k` steps, so its gradient grows with `k`. Now the six
# training runs (about 30 seconds in all):


# %%
def train(k, max_norm, epochs):
    """Train a fresh model (the same initial weights every time) with your tbptt_train."""
    params = init_params(V, D, H, torch.Generator().manual_seed(0))
    lengths = torch.tensor([min(k, T - s) for s in range(0, T, k)], dtype=DTYPE)  # chunk lengths
    per_token, epoch_loss = [], []
    for epoch in range(epochs):
        params, losses, _ = tbptt_train(x_all, y_all, torch.zeros(N, H, dtype=DTYPE), params, k, LR, max_norm)
        per_token.append(losses / lengths)  # each chunk's loss per token
        epoch_loss.append(float(losses.sum()) / T)  # the epoch's mean loss per token
    tokens = N * torch.cumsum(lengths.repeat(epochs), 0)  # tokens read after each chunk
    return {"params": params, "per_token": torch.cat(per_token), "tokens": tokens,
            "chunks_per_epoch": len(lengths), "epoch_loss": epoch_loss}


def smooth(values, window):
    """Moving average over the last `window` values (fewer at the start)."""
    c = torch.cat([torch.zeros(1, dtype=values.dtype), torch.cumsum(values, 0)])
    i = torch.arange(1, len(values) + 1)
    lo = (i - window).clamp_min(0)
    return (c[i] - c[lo]) / (i - lo)


start = time.time()
runs = {}
for k in K_VALUES:
    for clip in (True, False):
        runs[k, clip] = train(k, MAX_NORM if clip else NO_CLIP, EPOCHS)
print("trained %d models for %d epochs each in %.1f s" % (len(runs), EPOCHS, time.time() - start))
print("mean loss per token in the last epoch:")
for k in K_VALUES:
    print("  k = %2d:  with clipping %.3f   without clipping %.3f"
          % (k, runs[k, True]["epoch_loss"][-1], runs[k, False]["epoch_loss"][-1]))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
colors = {5: "tab:blue", 10: "tab:orange", 25: "tab:green"}
for ax, clip in zip(axes, (True, False)):
    for k in K_VALUES:
        run = runs[k, clip]
        curve = smooth(run["per_token"], run["chunks_per_epoch"])
        ax.semilogy(run["tokens"] / 1000, curve, color=colors[k], label="k = %d" % k)
    ax.axhline(math.log(V), color="gray", linestyle="--", linewidth=1, label="uniform guess (ln V)")
    ax.set_title("with clipping (max_norm = %g)" % MAX_NORM if clip else "without clipping")
    ax.set_xlabel("tokens read (thousands)")
    ax.set_ylim(0.05, 30)
    ax.grid(alpha=0.3, which="both")
axes[0].set_ylabel("loss per token (smoothed over an epoch)")
axes[0].legend()
fig.suptitle("Truncated BPTT with SGD (lr = %g): chunk loss per token" % LR)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to see** (in the full run; the `HANDOUT_FAST` run stops after 15 epochs). With
# clipping (left, note the log scale) every run learns smoothly, far below the uniform guess.
# For most of the run the shorter chunks are ahead at the same number of tokens: `k = 5` makes
# five times as many updates per epoch as `k = 25`. (The chapter is tiny, so the models end up
# reciting it; what longer chunks buy, learning longer dependencies, would show on held-out
# text.) Without clipping (right) the same learning rate is too large for the occasional huge
# gradient: `k = 5` stalls around a loss of 1.5, `k = 10` jumps up again and again, and `k = 25`
# blows up at once and stays above the uniform guess. The longer the chunk, the larger its
# gradient (it sums `k` steps' losses and multiplies more factors of `Wh`), the worse.

# %% [markdown]
# ## 5. How far back does the gradient reach?
#
# The lecture: backpropagation from $h_t$ to $h_{t-1}$ multiplies by $W_{hh}^\top$ (and by
# $\tanh'$), so the gradient reaching $h_0$ holds many factors of $W$. Below, a gradient is put
# on the last hidden state of a 40-step stretch of text and backpropagated with your
# `rnn_backward`; the plot shows the norm of the gradient that reaches the input of the step
# $s$ steps earlier (averaged over the batch), for the initial weights with $W_h$ scaled by 0.5,
# 1 (the initial weights used above) and 3, and for two trained models.

# %%
S = 40


def reach(params, generator):
    """Norm of d(last state)/d(input s steps back), s = 0 .. S-1, averaged over the batch."""
    emb, _ = word_embedding_forward(x_all[:, :S], params["W_embed"])  # (N, S, D)
    hs, cache = rnn_forward(emb, torch.zeros(N, H, dtype=DTYPE), params["Wx"], params["Wh"], params["b"])
    dh = torch.zeros_like(hs)  # (N, S, H)
    dh[:, -1] = torch.randn(N, H, generator=generator, dtype=DTYPE) / math.sqrt(H)  # only the last step
    dx = rnn_backward(dh, cache)[0]  # (N, S, D)
    return dx.norm(dim=2).mean(0).flip(0)  # (S,) index s = steps back


reaches = {}
for scale in (0.5, 1.0, 3.0):
    reaches["initial, Wh x %g" % scale] = reach(
        init_params(V, D, H, torch.Generator().manual_seed(0), wh_scale=scale), torch.Generator().manual_seed(2))
for k in (5, 25):
    reaches["trained, k = %d, clipped" % k] = reach(runs[k, True]["params"], torch.Generator().manual_seed(2))

fig, ax = plt.subplots(figsize=(7, 4.2))
for label, r in reaches.items():
    ax.semilogy(range(S), r, linestyle="--" if label.startswith("initial") else "-", label=label)
ax.set_xlabel("s: steps back from the last step")
ax.set_ylabel("gradient norm at the input s steps back")
ax.set_title("Gradient of the last state, backpropagated through time")
ax.grid(alpha=0.3, which="both")
ax.legend()
plt.tight_layout()
plt.show()
for label, r in reaches.items():
    print("%-26s s = 0: %.1e   s = 10: %.1e   s = 39: %.1e" % (label, r[0], r[10], r[S - 1]))

# %% [markdown]
# With small recurrent weights the gradient *vanishes* geometrically (the "Wh x 0.5" and
# "Wh x 1" curves: ten steps back it is 2 to 5 orders of magnitude smaller than at the last
# step). With large ones it *explodes*: it grows at every step back ("Wh x 3"). After the full
# run (the 15 epochs of the `HANDOUT_FAST` run change little), training has changed the
# picture: the trained models keep much more of the gradient over 40 steps than their initial
# weights did (they carry information in their state for longer), which puts them close to the
# regime where gradients explode, and where clipping matters.

# %% [raw]
# # BEGIN QUESTION
# name: tbptt_clipping
# manual: true
# points: 2

# %% [markdown]
# **Question 3.3 (written).** Why does gradient clipping help with an *exploding* gradient but
# not with a *vanishing* one? Refer to the training curves of section 4 and the plot of
# section 5.

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** An exploding gradient is one whose norm is huge because many factors
# $W_h^\top \operatorname{diag}(\tanh')$ of norm above 1 multiply together (the "Wh x 3" curve).
# The *direction* is still useful, but one SGD step of that length throws the parameters far
# away, which is what the unclipped runs show: the loss jumps up again and again, and more for
# longer chunks. Clipping multiplies the whole gradient by `max_norm / ||g||` when it is too
# long, which keeps its direction and bounds the step to `lr * max_norm`, so training goes on
# smoothly (the left panel).
#
# A vanishing gradient is a problem of *relative* size, not of overall length: the terms that
# link a prediction to words many steps back are tiny compared with the terms from the last
# few steps (the "Wh x 0.5" and "Wh x 1" curves fall by orders of magnitude).
# Clipping can only shrink the gradient, never enlarge it; and even rescaling the whole
# gradient up would scale the short-range and the long-range parts by the same factor, so the
# long-range signal would stay buried under the short-range one. The fix has to change how the
# gradient flows through time: an architecture whose state is updated additively (the LSTM's
# cell state), or careful initialisation of $W_h$; in the lecture's words, "to not squash
# downstream gradients, we need a new architecture."

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. Sampling from the trained model
#
# To generate text, feed a prompt one word at a time through your `word_embedding_forward` and
# `rnn_step_forward`, score the vocabulary with your `temporal_affine_forward`, turn the scores
# into probabilities with a softmax, pick the next word and feed it back. *Greedy* decoding
# takes the most probable word; *temperature sampling* draws from
# $\mathrm{softmax}(s_t / \tau)$: $\tau < 1$ sharpens the distribution, $\tau > 1$ flattens it.
# Both skip `<unk>`: a model that says "unknown word" is not much to read.


# %%
def generate(params, prompt, n_words, temperature, generator):
    """Continue `prompt` by n_words words: greedy when temperature is 0, else sampled."""
    out = [word_to_id.get(w, 0) for w in prompt.lower().split()]  # word ids, the prompt first
    n_prompt = len(out)
    h = torch.zeros(1, H, dtype=DTYPE)  # (1, H)
    for t in range(n_prompt + n_words - 1):
        x = torch.tensor([[out[t]]])  # (1, 1) the word read at step t
        emb, _ = word_embedding_forward(x, params["W_embed"])  # (1, 1, D)
        h, _ = rnn_step_forward(emb[:, 0], h, params["Wx"], params["Wh"], params["b"])  # (1, H)
        if t < n_prompt - 1:
            continue  # still reading the prompt
        scores, _ = temporal_affine_forward(h[:, None], params["W_out"], params["b_out"])  # (1, 1, V)
        scores = scores[0, 0].clone()  # (V,)
        scores[0] = -math.inf  # never write <unk>: its probability goes to the other words
        if temperature == 0:
            nxt = int(scores.argmax())
        else:
            probs = torch.softmax(scores / temperature, dim=0)  # (V,)
            nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
    return decode(out)


best_k = min(K_VALUES, key=lambda k: runs[k, True]["epoch_loss"][-1])
best = runs[best_k, True]["params"]
print("model: k = %d, with clipping, after %d epochs\n" % (best_k, EPOCHS))
gen = torch.Generator().manual_seed(0)
print("greedy:         ", generate(best, "it was the", 30, 0, gen), "\n")
for tau in (0.7, 1.0):
    print("temperature %.1f:" % tau, generate(best, "it was the", 40, tau, gen), "\n")
print("untrained model:", generate(model0, "it was the", 30, 1.0, gen))

# %% [markdown]
# After the full run the model has learned the chapter's phrases ("it was the season of
# light", "a king with a large jaw") and strings them together. Greedy decoding soon loops on
# the most probable pattern; sampling wanders more, and more so at a higher temperature. The
# untrained model produces word salad. (After the short `HANDOUT_FAST` run the samples are
# still mostly salad.)

# %% [markdown]
# ## 7. Results
#
# The numbers this notebook produced, checked against the ranges we expect from a correct
# `tbptt.py` (the runs are seeded, so a correct implementation lands well inside them):
#
# | result | full run | `HANDOUT_FAST=1` run |
# |---|---|---|
# | relative error of the `k = T` gradient (`Wh`) vs numerical | below 1e-6 | below 1e-6 |
# | relative error of the `k = 2` gradient (`Wh`) vs numerical | above 1e-3 | above 1e-3 |
# | cosine of the `k = 5` and full gradients of `Wh` | 0.5 to 0.999 | 0.5 to 0.999 |
# | loss per token in the first epoch, `k = 10`, clipped | 3.0 to 5.0 | 3.0 to 5.0 |
# | last-epoch loss per token, clipped, `k = 5` | 0.02 to 0.4 | 1.5 to 3.0 |
# | last-epoch loss per token, clipped, `k = 10` | 0.02 to 0.4 | 1.8 to 3.3 |
# | last-epoch loss per token, clipped, `k = 25` | 0.08 to 0.6 | 2.2 to 3.6 |
# | last-epoch loss per token, not clipped, `k = 25` | above 5 (diverged) | above 5 (diverged) |

# %%
RESULTS = {
    "gradcheck_full_bptt": tiny_errors[Tt]["Wh"],
    "gradcheck_truncated_k2": tiny_errors[2]["Wh"],
    "cosine_Wh_k5": cosines[5]["Wh"],
    "first_epoch_loss_clip_k10": runs[10, True]["epoch_loss"][0],
    "final_loss_clip_k5": runs[5, True]["epoch_loss"][-1],
    "final_loss_clip_k10": runs[10, True]["epoch_loss"][-1],
    "final_loss_clip_k25": runs[25, True]["epoch_loss"][-1],
    "final_loss_noclip_k25": runs[25, False]["epoch_loss"][-1],
}
EXPECTED = {
    "full": {"gradcheck_full_bptt": (0, 1e-6), "gradcheck_truncated_k2": (1e-3, math.inf),
             "cosine_Wh_k5": (0.5, 0.999), "first_epoch_loss_clip_k10": (3.0, 5.0),
             "final_loss_clip_k5": (0.02, 0.4), "final_loss_clip_k10": (0.02, 0.4),
             "final_loss_clip_k25": (0.08, 0.6), "final_loss_noclip_k25": (5.0, math.inf)},
    "fast": {"gradcheck_full_bptt": (0, 1e-6), "gradcheck_truncated_k2": (1e-3, math.inf),
             "cosine_Wh_k5": (0.5, 0.999), "first_epoch_loss_clip_k10": (3.0, 5.0),
             "final_loss_clip_k5": (1.5, 3.0), "final_loss_clip_k10": (1.8, 3.3),
             "final_loss_clip_k25": (2.2, 3.6), "final_loss_noclip_k25": (5.0, math.inf)},
}["fast" if FAST else "full"]

for name, value in RESULTS.items():
    low, high = EXPECTED[name]
    print("%-28s %10.4g   expected %s to %s" % (name, value, low, high))
outside = ["%s = %.4g (expected %s to %s)" % (name, RESULTS[name], *EXPECTED[name])
           for name in EXPECTED if not EXPECTED[name][0] <= RESULTS[name] <= EXPECTED[name][1]]
assert not outside, ("these results are outside the ranges stated above (%s run): %s. Check the functions "
                     "they come from with python check.py tbptt." % ("FAST" if FAST else "full", "; ".join(outside)))
print("all results inside the expected ranges")
