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
# name: 01_rnn_gradients
# requirements: null
# export_cell: false
# check_all_cell: false
# run_tests: false
# solutions_pdf: false
# generate: false
# tests:
#   ok_format: false

# %% [markdown]
# # Notebook 1: Where vanilla RNNs lose
#
# Lecture 5 ends its story of the vanilla RNN on a slide called *"The slide where RNNs lose"*:
# every nested call to the recurrence squeezes the gradient a little more, so the loss at the end
# of a sentence hardly reaches its first words. In this notebook you write the vanilla RNN and the
# LSTM step by hand (forward **and** backward, no autograd), check them numerically, and then
# *measure* that slide: how fast the gradient dies in a vanilla RNN, how much longer it survives in
# an LSTM, what happens when the recurrent weights are too large instead, and what gradient
# clipping does about it.
#
# **Your code goes in the `.py` files, not in this notebook.** This is the notebook of
# `rnn_layers.py`: the vanilla RNN (`rnn_step_forward`, `rnn_step_backward`, `rnn_forward`,
# `rnn_backward`) and the bidirectional RNN (`birnn_forward`, `birnn_backward`). Two parts of it
# also use two functions of other files, for comparison: the LSTM step of `lstm_layers.py`
# (`lstm_step_forward`, `lstm_step_backward`: sections 4 and 5) and `clip_grad_norm` of `tbptt.py`
# (section 6). Each section runs on its own once the functions it names are written: with
# `rnn_layers.py` alone, everything else runs, a cell that calls a function you have not written
# yet stops with one line that names it, and section 7 lists the results still missing; come back
# to them later. The notebook imports your
# functions, checks them with the public checker (the same checks as Gradescope's public ones),
# and runs the experiments on *your* functions. After editing a `.py` file, restart the kernel
# (Kernel → Restart & Run All, or run the cells one section at a time): Python does not re-import
# a module it has already loaded.
#
# The written questions (marked **Question**) are graded by hand from your answers in this notebook.
#
# Notation follows the lecture: $h_t$ is the hidden state after reading $x_t$,
# $h_t = \tanh(W_{hh} h_{t-1} + W_{xh} x_t)$ with column vectors. The code works on a batch of row
# vectors, so the same step reads `next_h = tanh(x @ Wx + prev_h @ Wh + b)` with `Wx` $= W_{xh}^\top$
# and `Wh` $= W_{hh}^\top$ (the lecture drops the bias $b$ "to compress notation"; the code keeps it).
# Sizes: N batch, T time steps, D input size, H hidden size.
#
# The whole notebook runs in well under a minute on a laptop CPU.

# %%
# Setup: run this cell first.
import os, sys
sys.path.insert(0, os.environ.get("RNN_ASSIGNMENT_DIR", "."))
FAST = os.environ.get("HANDOUT_FAST") == "1"  # a shorter run, used by the course's own tests

import math
import random

import matplotlib.pyplot as plt
import torch
from IPython import get_ipython

# %matplotlib inline

torch.set_num_threads(1)  # tiny tensors: one thread is faster (and much faster on a busy machine)
random.seed(0)
torch.manual_seed(0)
torch.set_default_dtype(torch.float64)  # gradient checks need float64

# Your functions, through track.load: the experiments are written in PyTorch, and on the NumPy track
# track.load converts tensors to arrays (and back) at the boundary, so your NumPy functions run unchanged.
from track import load

gradient_check, rnn_layers = load("gradient_check"), load("rnn_layers")
eval_numerical_gradient_array, rel_error = gradient_check.eval_numerical_gradient_array, gradient_check.rel_error
rnn_step_forward, rnn_step_backward = rnn_layers.rnn_step_forward, rnn_layers.rnn_step_backward
rnn_forward, rnn_backward = rnn_layers.rnn_forward, rnn_layers.rnn_backward
birnn_forward, birnn_backward = rnn_layers.birnn_forward, rnn_layers.birnn_backward
# lstm_layers.py (sections 4 and 5) and tbptt.py (section 6) are loaded where they are used

# %% [markdown]
# ## 1. One step of a vanilla RNN
#
# The recurrence of the lecture, for a batch of N sequences at once:
#
# $$a = x W_x + h_{\text{prev}} W_h + b, \qquad h_{\text{next}} = \tanh(a).$$
#
# For the backward pass you receive $\partial L/\partial h_{\text{next}}$ (`dnext_h`, shape (N, H))
# and return the gradients of all five inputs. Two facts do all the work: the derivative of tanh is
# $1 - \tanh^2(a) = 1 - h_{\text{next}}^2$ (elementwise), and a product $u W$ sends a gradient
# $g$ back to $u$ as $g W^\top$ and to $W$ as $u^\top g$ (summed over the batch).
# The lecture's remark *"backpropagation from $h_t$ to $h_{t-1}$ multiplies by $W_{hh}^\top$"* is
# exactly the `dprev_h` output: in column notation,
#
# $$\frac{\partial L}{\partial h_{t-1}} = W_{hh}^\top \,\operatorname{diag}\!\left(1 - h_t^2\right) \frac{\partial L}{\partial h_t}.$$
#
# Remember that matrix: the rest of the notebook is about what happens when you multiply by it many
# times.

# %% [raw]
# # BEGIN QUESTION
# name: rnn_step
# points: 0

# %% [markdown]
# **Task 1.** Write `rnn_step_forward` and `rnn_step_backward` in `rnn_layers.py`, then run the
# check below (it runs the public checks of both functions and prints what they found).

# %%
# Write rnn_step_forward and rnn_step_backward in rnn_layers.py, then run the check below.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("rnn_step_forward", "rnn_step_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The public checks compare your numbers with PyTorch's. A numerical gradient is a second,
# independent check you can run on any function, including ones no checker knows: nudge one input
# entry by $\pm h$, look at how $\sum (\text{output} \odot \text{dout})$ changes, and compare with
# what your backward pass says. With float64 and a correct backward pass the relative errors are
# about $10^{-8}$ or smaller; anything above $10^{-6}$ means a bug.

# %%
g = torch.Generator().manual_seed(1)
N, D, H = 3, 4, 5
x = torch.randn(N, D, generator=g)
prev_h = torch.randn(N, H, generator=g)
Wx = torch.randn(D, H, generator=g) / math.sqrt(D)
Wh = torch.randn(H, H, generator=g) / math.sqrt(H)
b = torch.randn(H, generator=g)
dnext_h = torch.randn(N, H, generator=g)

def gradient_errors(label, forward, inputs, analytic, upstream):
    """Relative error of each analytic gradient against a numerical one, printed and returned.

    forward(**inputs) gives the output whose upstream gradient is `upstream`; analytic holds the
    gradients of the inputs, in the order of `inputs`.
    """
    errors = {}
    for (name, value), grad in zip(inputs.items(), analytic):
        def f(v, name=name):
            return forward(**dict(inputs, **{name: v}))
        errors["d" + name] = rel_error(grad, eval_numerical_gradient_array(f, value, upstream))
        print("%s d%-7s relative error %.2e" % (label, name, errors["d" + name]))
    return errors


next_h, step_cache = rnn_step_forward(x, prev_h, Wx, Wh, b)
grads = rnn_step_backward(dnext_h, step_cache)
step_inputs = {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "b": b}
STEP_ERRORS = gradient_errors("rnn_step_backward", lambda **a: rnn_step_forward(**a)[0], step_inputs, grads,
                              dnext_h)

# %% [markdown]
# ## 2. A whole sequence: backpropagation through time
#
# `rnn_forward` runs the step T times from `h0` and returns every state: `h[:, t]` is the state
# after reading `x[:, t]`. The same weights are used at every step.
#
# `rnn_backward(dh, cache)` gets `dh[:, t]`, the gradient that reaches `h[:, t]` *from above* (an
# output layer, say). The state `h[:, t]` also feeds step t+1, so the total gradient of `h[:, t]` is
# `dh[:, t]` plus what step t+1 sends back through its `dprev_h`: walk backwards from t = T−1 to 0,
# carrying that second part. Because the weights are shared, their gradients are the **sum** of the
# gradients of all the steps.

# %% [raw]
# # BEGIN QUESTION
# name: rnn_sequence
# points: 0

# %% [markdown]
# **Task 2.** Write `rnn_forward` and `rnn_backward` in `rnn_layers.py` (loop over time and call
# your step functions), then run the check.

# %%
# Write rnn_forward and rnn_backward in rnn_layers.py, then run the check below.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("rnn_forward", "rnn_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
g = torch.Generator().manual_seed(2)
N, T, D, H = 2, 4, 3, 5
x = torch.randn(N, T, D, generator=g)
h0 = torch.randn(N, H, generator=g)
Wx = torch.randn(D, H, generator=g) / math.sqrt(D)
Wh = torch.randn(H, H, generator=g) / math.sqrt(H)
b = torch.randn(H, generator=g)
dh = torch.randn(N, T, H, generator=g)

h, seq_cache = rnn_forward(x, h0, Wx, Wh, b)
grads = rnn_backward(dh, seq_cache)
seq_inputs = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b}
SEQ_ERRORS = gradient_errors("rnn_backward", lambda **a: rnn_forward(**a)[0], seq_inputs, grads, dh)

# %% [markdown]
# ## 3. Reading both ways: a bidirectional RNN
#
# A vanilla RNN's state $h_t$ has read only $x_0, \dots, x_t$. A bidirectional RNN runs a second
# RNN, with its own weights, from the end of the sequence back to the start, and concatenates the
# two states at every t: `h[:, t, :H]` is the forward RNN's state after reading `x[:, t]`, and
# `h[:, t, H:]` the backward RNN's state after reading `x[:, t]` (coming from the end), the layout of
# `torch.nn.RNN(bidirectional=True, batch_first=True)`. Both halves are ordinary RNNs: reuse your
# `rnn_forward` and `rnn_backward` (the backward RNN reads the sequence reversed in time; its
# gradients have to be put back in the original order).

# %% [raw]
# # BEGIN QUESTION
# name: birnn
# points: 0

# %% [markdown]
# **Task 3.** Write `birnn_forward` and `birnn_backward` in `rnn_layers.py`, then run the check.

# %%
# Write birnn_forward and birnn_backward in rnn_layers.py, then run the check below.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("birnn_forward", "birnn_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The numerical check, and what the two directions see: with an upstream gradient only at t = 0,
# the forward half of `h[:, 0]` depends on `x[:, 0]` alone, while the backward half has read the
# whole sequence, so its gradient reaches every input, the last one included.

# %%
g = torch.Generator().manual_seed(4)
N, T, D, H = 2, 5, 3, 4
bi_inputs = {"x": torch.randn(N, T, D, generator=g),
             "h0_f": torch.randn(N, H, generator=g), "h0_b": torch.randn(N, H, generator=g)}
for side in ("f", "b"):
    bi_inputs.update({"Wx_" + side: torch.randn(D, H, generator=g) / math.sqrt(D),
                      "Wh_" + side: torch.randn(H, H, generator=g) / math.sqrt(H),
                      "b_" + side: torch.randn(H, generator=g)})
dh_bi = torch.randn(N, T, 2 * H, generator=g)
h_bi, bi_cache = birnn_forward(**bi_inputs)
grads = birnn_backward(dh_bi, bi_cache)
BIRNN_ERRORS = gradient_errors("birnn_backward", lambda **a: birnn_forward(**a)[0], bi_inputs, grads, dh_bi)

first_only = torch.zeros(N, T, 2 * H)
first_only[:, 0] = dh_bi[:, 0]  # the loss reads only h[:, 0]
for half, name in ((slice(0, H), "forward half"), (slice(H, 2 * H), "backward half")):
    dh_half = torch.zeros_like(first_only)
    dh_half[:, 0, half] = first_only[:, 0, half]
    dx_half = birnn_backward(dh_half, birnn_forward(**bi_inputs)[1])[0]
    print("%s of h[:, 0]: gradient norm reaching x[:, t] for t = 0..%d:" % (name, T - 1),
          " ".join("%.1e" % float(dx_half[:, t].norm()) for t in range(T)))
    if name == "forward half":
        BIRNN_FORWARD_LEAK = float(dx_half[:, 1:].norm())  # must be 0: x after t = 0 is unseen
    else:
        BIRNN_BACKWARD_REACH = float(dx_half[:, -1].norm())  # > 0: the last input reaches h[:, 0]

# %% [markdown]
# ## 4. One step of an LSTM
#
# The lecture's LSTM "flips the default recurrence behaviour from *squeeze out the history* to
# *mostly consider the history*". With the gates stacked in the lecture's order i, f, o, g along an
# axis of size 4H:
#
# $$\begin{pmatrix} i \\ f \\ o \\ g \end{pmatrix} = \begin{pmatrix} \sigma \\ \sigma \\ \sigma \\ \tanh \end{pmatrix}\left(x W_x + h_{t-1} W_h + b\right), \qquad
# c_t = f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t).$$
#
# f (forget) decides whether to erase the cell, i (input) whether to write to it, g what to write,
# o how much of the cell to reveal. In the backward pass, $c_t$ receives gradient from two places,
# the next step's cell (`dnext_c`) and $h_t = o \odot \tanh(c_t)$ (through `dnext_h`): add both.
# Then look at the cell's own path back in time:
#
# $$\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f) \quad(\text{plus the paths through } h_{t-1} \text{ and the gates}).$$
#
# No weight matrix, no tanh′: along the cell, the gradient is only multiplied by the forget gate.

# %% [raw]
# # BEGIN QUESTION
# name: lstm_step
# points: 0

# %% [markdown]
# **Task 4.** Write `lstm_step_forward` and `lstm_step_backward` in `lstm_layers.py` (gate order
# i, f, o, g; one bias), then run the check. This is the LSTM of the next notebook; here only its
# step is used, to compare its gradients with the vanilla RNN's in section 5. If you write
# `lstm_layers.py` later, skip this section and the LSTM half of section 5 for now.

# %%
# Write lstm_step_forward and lstm_step_backward in lstm_layers.py, then run the check below.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("lstm_step_forward", "lstm_step_backward")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
lstm_layers = load("lstm_layers")
lstm_step_forward, lstm_step_backward = lstm_layers.lstm_step_forward, lstm_layers.lstm_step_backward

g = torch.Generator().manual_seed(3)
N, D, H = 3, 4, 5
lstm_inputs = {
    "x": torch.randn(N, D, generator=g),
    "prev_h": torch.randn(N, H, generator=g),
    "prev_c": torch.randn(N, H, generator=g),
    "Wx": torch.randn(D, 4 * H, generator=g) / math.sqrt(D),
    "Wh": torch.randn(H, 4 * H, generator=g) / math.sqrt(H),
    "b": torch.randn(4 * H, generator=g),
}
dnext_h = torch.randn(N, H, generator=g)
dnext_c = torch.randn(N, H, generator=g)

next_h, next_c, lstm_cache = lstm_step_forward(**lstm_inputs)
grads = lstm_step_backward(dnext_h, dnext_c, lstm_cache)
# both outputs at once, checked against both upstream gradients
LSTM_ERRORS = gradient_errors("lstm_step_backward", lambda **a: torch.cat(lstm_step_forward(**a)[:2], dim=1),
                              lstm_inputs, grads, torch.cat([dnext_h, dnext_c], dim=1))

# %% [markdown]
# ## 5. The slide where RNNs lose: measuring the vanishing gradient
#
# Take one random sequence of T = 60 steps and a loss that depends **only on the last state**,
# $L = u \cdot h_{T-1}$ with a fixed unit vector $u$ (think: a sentiment read off the final
# state). Then $\partial L/\partial h_{T-1} = u$ has norm 1, and every earlier state gets its
# gradient only through the chain of steps after it:
#
# $$\frac{\partial L}{\partial h_t} = \prod_{s=t+1}^{T-1} \left[ W_{hh}^\top \operatorname{diag}\!\left(1 - h_s^2\right)\right] u .$$
#
# Each factor squeezes twice: by tanh′ ≤ 1 (much smaller where a unit saturates, the lecture's
# "non-linearly squeezing") and by $W_{hh}^\top$. If the largest singular value of $W_{hh}$ is below 1
# the norm must shrink geometrically (Pascanu, Mikolov & Bengio, 2013); with tanh′ well below 1 on
# average it shrinks even when $W_{hh}$ is somewhat larger, as it is here.
#
# The cell below runs the sequence forward with **your** `rnn_step_forward`, then walks back with
# **your** `rnn_step_backward` and records $\lVert \partial L/\partial h_t \rVert$ at every t. It also
# runs your `rnn_backward` on the same sequence with `dh` zero except at the last step: its `dh0` must
# be the gradient the step-by-step walk arrives at (a check that the two agree).

# %%
T, D, H = 60, 8, 32
g = torch.Generator().manual_seed(566)
x_seq = torch.randn(1, T, D, generator=g)  # one sequence (N = 1)
u = torch.randn(1, H, generator=g)
u = u / u.norm()  # dL/dh_{T-1}: L = u . h_{T-1}
h_start = torch.zeros(1, H)
Wx_rnn = torch.randn(D, H, generator=g) / math.sqrt(D)
Wh_base = torch.randn(H, H, generator=g) / math.sqrt(H)  # entries of variance 1/H: "scale 1"
b_rnn = torch.zeros(H)
Wx_lstm = torch.randn(D, 4 * H, generator=g) / math.sqrt(D)  # for the LSTM, below
Wh_lstm = torch.randn(H, 4 * H, generator=g) / math.sqrt(H)
steps = list(range(T))


def rnn_grad_norms(Wh):
    """Norms of dL/dh_t for t = 0..T-1 (vanilla RNN, loss on the last state), and dL/dh0."""
    h_t, step_caches = h_start, []
    for t in range(T):
        h_t, c = rnn_step_forward(x_seq[:, t], h_t, Wx_rnn, Wh, b_rnn)
        step_caches.append(c)
    norms = torch.zeros(T)
    grad_h = u
    for t in range(T - 1, -1, -1):  # backwards in time
        norms[t] = grad_h.norm()  # the whole gradient of h_t: nothing reaches it from above
        _, grad_h, _, _, _ = rnn_step_backward(grad_h, step_caches[t])
    return norms, grad_h


rnn_norms, rnn_dh0_steps = rnn_grad_norms(Wh_base)

# the same gradient from your rnn_backward: dh is zero except at the last step
h_seq, full_cache = rnn_forward(x_seq, h_start, Wx_rnn, Wh_base, b_rnn)
dh_last_only = torch.zeros(1, T, H)
dh_last_only[:, -1] = u
_, rnn_dh0_full, _, _, _ = rnn_backward(dh_last_only, full_cache)
BACKWARD_AGREES = rel_error(rnn_dh0_full, rnn_dh0_steps)
print("rnn_backward's dh0 vs the step-by-step walk: relative error %.1e" % BACKWARD_AGREES)
print("W_hh: largest singular value %.2f, spectral radius %.2f; tanh' = 1 - h_t^2 averages %.2f along the sequence"
      % (float(torch.linalg.svdvals(Wh_base)[0]), float(torch.linalg.eigvals(Wh_base).abs().max()),
         float((1 - h_seq * h_seq).mean())))


def decades_lost(norms):
    """Orders of magnitude the gradient loses from h_{T-1} back to h_0: log10(|dL/dh_{T-1}| / |dL/dh_0|)."""
    return math.log10(float(norms[-1] / norms[0]))


RNN_DECADES = decades_lost(rnn_norms)
print("vanilla RNN loses %5.1f orders of magnitude over %d steps (x %.2f per step)"
      % (RNN_DECADES, T - 1, 10 ** (-RNN_DECADES / (T - 1))))

# %% [markdown]
# The LSTM gets the same sequence, weights drawn from the same distribution (four blocks instead of
# one) and zero biases, except the forget gate's, which starts at $b_f = 1$ (the usual
# initialisation; Jozefowicz et al., 2015). We record $\lVert \partial L/\partial h_t\rVert$ and
# $\lVert \partial L/\partial c_t \rVert$, walking back with your `lstm_step_backward` (this cell
# needs the LSTM step of section 4), and plot both networks.

# %%
lstm_layers = load("lstm_layers")
lstm_step_forward, lstm_step_backward = lstm_layers.lstm_step_forward, lstm_layers.lstm_step_backward


def lstm_grad_norms(forget_bias):
    """Norms of dL/dh_t (t = 0..T-1) and of the gradient that reaches c_t along the cell path
    from step t+1 (t = 0..T-2), for the LSTM with the loss on the last hidden state."""
    b = torch.zeros(4 * H)
    b[H:2 * H] = forget_bias  # gate order i, f, o, g: the forget gate is the second block
    h_t, c_t, step_caches = h_start, torch.zeros(1, H), []
    for t in range(T):
        h_t, c_t, c = lstm_step_forward(x_seq[:, t], h_t, c_t, Wx_lstm, Wh_lstm, b)
        step_caches.append(c)
    norms_h, norms_c = torch.zeros(T), torch.full((T,), float("nan"))
    grad_h, grad_c = u, torch.zeros(1, H)  # nothing reaches c_{T-1} from a later step
    for t in range(T - 1, -1, -1):  # backwards in time
        norms_h[t] = grad_h.norm()
        _, grad_h, grad_c, _, _, _ = lstm_step_backward(grad_h, grad_c, step_caches[t])
        if t > 0:
            norms_c[t - 1] = grad_c.norm()  # dprev_c of step t: the cell path into c_{t-1}
    return norms_h, norms_c


FORGET_BIASES = (0.0, 1.0, 2.0, 3.0)
lstm_runs = {bf: lstm_grad_norms(bf) for bf in FORGET_BIASES}
lstm_norms, lstm_cell_norms = lstm_runs[1.0]
LSTM_DECADES = decades_lost(lstm_norms)
LSTM_OVER_RNN = 10.0 ** (RNN_DECADES - LSTM_DECADES)  # how much more gradient reaches h_0 in the LSTM
for label, dec in [("vanilla RNN", RNN_DECADES)] + [("LSTM, b_f = %g" % bf, decades_lost(lstm_runs[bf][0]))
                                                       for bf in FORGET_BIASES]:
    print("%-16s loses %5.1f orders of magnitude over %d steps (x %.2f per step)"
          % (label, dec, T - 1, 10 ** (-dec / (T - 1))))
print("at t = 0 the LSTM (b_f = 1) keeps %.1e times more gradient than the vanilla RNN" % LSTM_OVER_RNN)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.3))
ax1.semilogy(steps, rnn_norms, color="C3", lw=2, label=r"vanilla RNN: $\|\partial L/\partial h_t\|$")
ax1.semilogy(steps, lstm_norms, color="C0", lw=2, label=r"LSTM ($b_f=1$): $\|\partial L/\partial h_t\|$")
ax1.semilogy(steps, lstm_cell_norms, color="C0", ls="--", label=r"LSTM ($b_f=1$): gradient along the cell path into $c_t$")
ax1.set_xlabel("time step t (the loss reads only the last state, t = %d)" % (T - 1))
ax1.set_ylabel("gradient norm (log scale)")
ax1.set_title("The gradient of the last step, walked back in time")
ax1.legend(fontsize=8)
ax1.grid(True, which="major", alpha=0.3)
ax2.semilogy(steps, rnn_norms, color="C3", lw=2, label="vanilla RNN")
for k, bf in enumerate(FORGET_BIASES):
    ax2.semilogy(steps, lstm_runs[bf][0], color=plt.cm.Blues(0.4 + 0.2 * k), label=r"LSTM, $b_f = %g$" % bf)
ax2.set_xlabel("time step t")
ax2.set_title(r"LSTM $\|\partial L/\partial h_t\|$ for several forget-gate biases $b_f$")
ax2.legend(fontsize=8)
ax2.grid(True, which="major", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What you should see** (with correct layers; the sequence and weights are seeded, so your
# numbers match these up to rounding). Left: both curves start at 1 at the last step, and going
# back in time the vanilla RNN's gradient falls on a straight line on the log scale, losing
# **8 to 13 orders of magnitude** over the 59 steps (a factor of about 0.6–0.7 per step), while
# the LSTM with $b_f = 1$ loses only **4 to 7.5**. At t = 0 the LSTM's gradient is **at least
# $10^3$ times** larger than the vanilla RNN's (about $5\cdot 10^4$ with the reference layers).
# The dashed curve is the part that travels along the cell, $c_{t-1} \leftarrow c_t$, multiplied
# only by f at each step. Right: the cell path is a highway only when f is close to 1. With
# $b_f = 0$ the gates start at f ≈ 0.5 and the LSTM's gradient dies about as fast as the vanilla
# RNN's (here, even a little faster); $b_f = 2$ or $3$ keeps far more. This is why LSTMs are
# initialised with a positive forget bias, and why training can keep a memory alive by learning
# f ≈ 1 where it needs one.

# %% [raw]
# # BEGIN QUESTION
# name: vanishing_written
# manual: true
# points: 3

# %% [markdown]
# **Question 1 (written).** The lecture says that a *multi-layer vanilla RNN will have such bad
# gradient vanishing it probably won't train*. Using the formula for
# $\partial L/\partial h_t$ above and what you measured, explain why a vanilla RNN over a long
# sequence (or a stack of them) does not learn long-range dependencies. Why can't you fix it by
# simply making $W_{hh}$ larger? And which term of the LSTM's backward pass avoids the problem, and
# under what condition?

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** The gradient that reaches $h_t$ from a loss at step $T-1$ is a product of $T-1-t$
# Jacobians $W_{hh}^\top \operatorname{diag}(1 - h_s^2)$. Every factor squeezes: tanh′ ≤ 1 (and is
# close to 0 for saturated units), and with $W_{hh}$ of moderate size its norm is below 1, so the
# product shrinks geometrically with the distance: here about ×0.67 per step, ten orders of
# magnitude over 59 steps. The weight gradients are sums over time of per-step terms, so the
# terms that link an output to inputs far in the past are $10^{-10}$ times smaller than the
# short-range ones and are lost: gradient descent only ever learns short-range dependencies. A stack
# of vanilla RNN layers makes it worse: a path from the loss to an early input of the bottom layer
# multiplies Jacobians both along time and across layers, each with its own tanh′ squeeze.
#
# A larger $W_{hh}$ does not help: the same product then grows geometrically (exploding gradients,
# section 6); there is no stable middle, because tanh′ changes with the data and the per-step factor
# crosses 1 only at one scale. The LSTM's cell path avoids the product: $\partial c_t/\partial c_{t-1}
# = \operatorname{diag}(f)$, with no weight matrix and no tanh′, so the gradient along the cell is
# multiplied only by the forget gate. That helps only when $f \approx 1$ (positive forget bias, or a
# learned f); with f ≈ 0.5 it vanishes just as fast, as the right-hand plot shows.

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 6. The other way to lose: exploding gradients, and gradient clipping
#
# The same product grows geometrically when the recurrent weights are large. Below, the same
# sequence goes through the same vanilla RNN with $W_{hh}$ scaled by 4 (and, for the right-hand plot,
# by a range of scales): we record the per-step factor
# $\left(\lVert\partial L/\partial h_0\rVert / \lVert\partial L/\partial h_{T-1}\rVert\right)^{1/(T-1)}$,
# below 1 for a vanishing gradient and above 1 for an exploding one.

# %%
EXPLODE_SCALE = 4.0
explode_norms, _ = rnn_grad_norms(EXPLODE_SCALE * Wh_base)
EXPLODE_DECADES = -decades_lost(explode_norms)  # orders of magnitude gained from h_{T-1} back to h_0

SCALES = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0] if FAST else [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
per_step = []
for s in SCALES:
    n, _ = rnn_grad_norms(s * Wh_base)
    per_step.append(float(n[0] / n[-1]) ** (1.0 / (T - 1)))
CRITICAL_SCALE = next(s for s, f in zip(SCALES, per_step) if f > 1.0)  # the first scale that explodes
print("scale %g: the gradient gains %.1f orders of magnitude from h_%d back to h_0" % (EXPLODE_SCALE, EXPLODE_DECADES, T - 1))
print("per-step factor by scale of W_hh:", ", ".join("%g: %.2f" % sf for sf in zip(SCALES, per_step)))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.3))
ax1.semilogy(steps, rnn_norms, color="C3", label=r"$W_{hh}$ scale 1 (vanishing)")
ax1.semilogy(steps, explode_norms, color="C1", label=r"$W_{hh}$ scale %g (exploding)" % EXPLODE_SCALE)
ax1.set_xlabel("time step t")
ax1.set_ylabel(r"$\|\partial L/\partial h_t\|$ (log scale)")
ax1.set_title("Gradient of the last step, walked back in time")
ax1.legend(fontsize=8)
ax1.grid(True, alpha=0.3)
ax2.plot(SCALES, per_step, "o-", color="C4")
ax2.axhline(1.0, color="gray", ls="--")
ax2.set_xlabel(r"scale of $W_{hh}$")
ax2.set_ylabel("per-step factor of the gradient norm")
ax2.set_title("Vanishing below 1, exploding above")
ax2.grid(True, alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# **What you should see.** Left: with $W_{hh}$ four times larger the same walk goes the other
# way: the gradient of the last step *grows* going back in time, gaining **5 to 9 orders of
# magnitude** over 59 steps (about 7 with the reference layers). Right: the per-step factor rises
# with the scale of $W_{hh}$ and crosses 1 (vanishing below, exploding above) at a scale
# **between 1.5 and 2.5**: there is no comfortable middle.
#
# The lecture's remedy for explosions is **gradient clipping**: if the total norm of all the
# gradients, $\sqrt{\sum_p \lVert g_p \rVert^2}$, exceeds `max_norm`, multiply every gradient by
# `max_norm / (total_norm + 1e-6)`. One factor for all the tensors: the direction is kept, only the
# length shrinks.

# %% [raw]
# # BEGIN QUESTION
# name: clip_grad_norm
# points: 0

# %% [markdown]
# **Task 5.** Write `clip_grad_norm` in `tbptt.py`, then run the check. It belongs to `tbptt.py`,
# whose notebook (03) uses it to train a language model; if you write it later, the rest of this
# section waits for it (section 7 says which results are still missing).

# %%
# Write clip_grad_norm in tbptt.py, then run the check below.

# %% [raw]
# # BEGIN TESTS

# %%
def test_public_checks():  # the checker's report if one fails (python check.py does the same)
    import notebook_checks
    notebook_checks.require("clip_grad_norm")

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
clip_grad_norm = load("tbptt").clip_grad_norm

toy = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([[0.0, 4.0]])}  # total norm 5
clipped, total = clip_grad_norm(toy, 1.0)
print("total norm %.3f; clipped to 1.0:" % float(total), {k: [round(float(v), 4) for v in t.flatten()] for k, t in clipped.items()})
clipped, total = clip_grad_norm(toy, 10.0)
print("total norm %.3f; max_norm 10 leaves it alone:" % float(total), {k: [round(float(v), 4) for v in t.flatten()] for k, t in clipped.items()})

# %% [markdown]
# Now the experiment. In training, the loss at the last step is backpropagated over the last k
# steps (truncated backpropagation through time, the lecture's other remedy, with the earlier state
# taken as a constant). For every k from 1 to T we compute the gradients of the RNN's parameters
# `Wx`, `Wh`, `b` with your `rnn_forward`/`rnn_backward`, and their total norm before and after
# your `clip_grad_norm` with `max_norm = 10`, for the well-behaved scale 1 and the exploding scale 4.

# %%
clip_grad_norm = load("tbptt").clip_grad_norm

MAX_NORM = 10.0


def truncated_grad_norms(Wh):
    """Total gradient norm of (Wx, Wh, b) for the loss on the last state, backpropagated over the
    last k steps (k = 1..T), before and after clip_grad_norm; the cosine between the two; and the
    gradients themselves (flattened, before clipping)."""
    states, _ = rnn_forward(x_seq, h_start, Wx_rnn, Wh, b_rnn)
    before, after, cosines, flats = [], [], [], []
    for k in range(1, T + 1):
        start = states[:, T - k - 1] if k < T else h_start  # the carried state, a constant
        h_k, cache_k = rnn_forward(x_seq[:, T - k:], start, Wx_rnn, Wh, b_rnn)
        dh_k = torch.zeros_like(h_k)
        dh_k[:, -1] = u
        _, _, dWx, dWh, db = rnn_backward(dh_k, cache_k)
        grads = {"Wx": dWx, "Wh": dWh, "b": db}
        clipped, total = clip_grad_norm(grads, MAX_NORM)
        flat = torch.cat([grads[p].flatten() for p in grads])
        flat_clipped = torch.cat([clipped[p].flatten() for p in grads])
        before.append(float(total))
        after.append(float(flat_clipped.norm()))
        cosines.append(float(flat @ flat_clipped / (flat.norm() * flat_clipped.norm())))
        flats.append(flat)
    return before, after, cosines, flats


tame_before, tame_after, tame_cos, _ = truncated_grad_norms(Wh_base)
wild_before, wild_after, wild_cos, wild_grads = truncated_grad_norms(EXPLODE_SCALE * Wh_base)
# the gradient of the last 10 steps alone (k = 10), as a fraction of the full one (k = T)
NEAR_SHARE = float(wild_grads[9].norm() / wild_grads[-1].norm())
print("scale 1: total norm %.2f..%.2f, never above max_norm = %g, so clipping leaves it as it is"
      % (min(tame_before), max(tame_before), MAX_NORM))
print("scale %g: total norm up to %.1e before clipping, %.4f at most after; cosine(before, after) >= %.6f"
      % (EXPLODE_SCALE, max(wild_before), max(wild_after), min(wild_cos)))
print("scale %g: the last 10 steps alone give a gradient %.1e times as long as the full one"
      % (EXPLODE_SCALE, NEAR_SHARE))

ks = list(range(1, T + 1))
fig, (ax_before, ax_after) = plt.subplots(1, 2, figsize=(13, 4.3), sharey=True)
for ax, (tame, wild), when in ((ax_before, (tame_before, wild_before), "before clipping"),
                               (ax_after, (tame_after, wild_after), "after clip_grad_norm")):
    ax.axhline(MAX_NORM, color="gray", ls="--", lw=1, zorder=1, label="max_norm = %g" % MAX_NORM)
    ax.semilogy(ks, wild, color="C1", lw=2, marker="o", ms=3, zorder=3, label="scale %g" % EXPLODE_SCALE)
    ax.semilogy(ks, tame, color="C3", lw=2, marker="s", ms=3, zorder=3, label="scale 1")
    ax.set_xlabel("k: steps backpropagated (truncated BPTT)")
    ax.set_title("Total gradient norm of $W_x, W_h, b$, " + when)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
ax_before.set_ylabel("total gradient norm (log scale)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **What you should see.** Left, before clipping: with scale 1 the total gradient norm levels off
# at 3–5 however far back you go (the distant steps contribute almost nothing) and is never above
# `max_norm`; with scale 4 it grows geometrically with k, to about $10^7$ at k = 60. Right, after
# `clip_grad_norm`: the scale-1 curve is exactly the same as on the left (clipping leaves it as it
# is), and the scale-4 curve follows its left-hand twin up to `max_norm` and then stays on the
# dashed line: it is **never above `max_norm` = 10**, and the clipped gradient points in **exactly
# the same direction** (cosine 1).
# The last line printed above says where that direction comes from: the gradient of the last 10
# steps alone is **less than 1%** as long as the full one, so the full gradient, clipped or not, is
# almost entirely made of the distant, exploding steps.

# %% [raw]
# # BEGIN QUESTION
# name: clipping_written
# manual: true
# points: 2

# %% [markdown]
# **Question 2 (written).** The lecture lists gradient clipping as a remedy. From the last two
# plots and the numbers printed above: what does clipping fix, and what does it **not** fix? Would it
# help the vanilla RNN of section 5 learn a dependency 50 steps long?

# %% [raw]
# # BEGIN SOLUTION

# %% [markdown]
# **Answer.** Clipping fixes the *size* of one update: when the gradient explodes, its norm is
# scaled down to `max_norm` (10 here, instead of $10^7$), so a single SGD step can no longer throw
# the weights far away and blow up the loss (NaNs, divergence). It keeps the direction (cosine 1),
# and it does nothing when the norm is already below the threshold.
#
# It does not fix the cause: the product of Jacobians is unchanged, so the *direction* of an
# exploding gradient is still dominated by whichever steps explode (here the last 10 steps make up
# less than 1% of it), and the short-range signal is still drowned. And it does
# nothing at all for vanishing gradients: it can only shrink a gradient, never enlarge the
# $10^{-10}$ contribution of a step 50 steps back. So no, it would not help the vanilla RNN of
# section 5 learn a 50-step dependency; that needs a different architecture (the LSTM's cell path
# with f ≈ 1, a GRU) or a different initialisation, not a rescaled gradient. Clipping also adds a
# hyperparameter (`max_norm`).

# %% [raw]
# # END SOLUTION

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 7. Results
#
# The last cell gathers the numbers this notebook stated above and checks each one against the
# range given in the text. If one is out of range, the message says which; the usual cause is a
# bug in a backward pass that the earlier checks would also show. A result whose section has not
# run to its end yet (a function you have not written, say) is listed as missing, with its section.

# %%
# Each result: its section, and how to read it from what that section computed.
RESULT_SOURCES = {
    "largest gradient-check error, RNN": ("1-2", lambda: max(list(STEP_ERRORS.values()) + list(SEQ_ERRORS.values()))),
    "largest gradient-check error, bidirectional RNN": ("3", lambda: max(BIRNN_ERRORS.values())),
    "birnn: forward half of h_0, gradient to x_1..x_T-1": ("3", lambda: BIRNN_FORWARD_LEAK),
    "birnn: backward half of h_0, gradient to x_T-1": ("3", lambda: BIRNN_BACKWARD_REACH),
    "largest gradient-check error, LSTM step": ("4", lambda: max(LSTM_ERRORS.values())),
    "rnn_backward dh0 vs step-by-step walk": ("5", lambda: BACKWARD_AGREES),
    "vanilla RNN: orders of magnitude lost": ("5", lambda: RNN_DECADES),
    "LSTM (b_f = 1): orders of magnitude lost": ("5, LSTM", lambda: LSTM_DECADES),
    "LSTM / RNN gradient at t = 0": ("5, LSTM", lambda: LSTM_OVER_RNN),
    "scale 4: orders of magnitude gained": ("6", lambda: EXPLODE_DECADES),
    "first scale with per-step factor > 1": ("6", lambda: CRITICAL_SCALE),
    "scale 4: largest norm after clipping": ("6, clipping", lambda: max(wild_after)),
    "scale 4: smallest cosine(before, after)": ("6, clipping", lambda: min(wild_cos)),
    "scale 1: largest change made by clipping": ("6, clipping",
                                                 lambda: max(abs(a - b) for a, b in zip(tame_after, tame_before))),
    "scale 4: last 10 steps / full gradient": ("6, clipping", lambda: NEAR_SHARE),
}
# The ranges stated in the text (the same for the short run used by the course's tests).
EXPECTED_FULL = {
    "largest gradient-check error, RNN": (0.0, 1e-6),
    "largest gradient-check error, bidirectional RNN": (0.0, 1e-6),
    "birnn: forward half of h_0, gradient to x_1..x_T-1": (0.0, 0.0),
    "birnn: backward half of h_0, gradient to x_T-1": (1e-6, float("inf")),
    "largest gradient-check error, LSTM step": (0.0, 1e-6),
    "rnn_backward dh0 vs step-by-step walk": (0.0, 1e-10),
    "vanilla RNN: orders of magnitude lost": (8.0, 13.0),
    "LSTM (b_f = 1): orders of magnitude lost": (4.0, 7.5),
    "LSTM / RNN gradient at t = 0": (1e3, float("inf")),
    "scale 4: orders of magnitude gained": (5.0, 9.0),
    "first scale with per-step factor > 1": (1.5, 2.5),
    "scale 4: largest norm after clipping": (0.0, 10.0 + 1e-6),  # max_norm = 10
    "scale 4: smallest cosine(before, after)": (1.0 - 1e-9, 1.0 + 1e-9),
    "scale 1: largest change made by clipping": (0.0, 1e-12),
    "scale 4: last 10 steps / full gradient": (0.0, 0.01),
}
EXPECTED_FAST = dict(EXPECTED_FULL)
EXPECTED = EXPECTED_FAST if FAST else EXPECTED_FULL


class ResultsMissing(Exception):
    def _render_traceback_(self):  # IPython shows the message alone, not a traceback
        return ["ResultsMissing: " + str(self)]


RESULTS, MISSING = {}, {}
for name, (section, value) in RESULT_SOURCES.items():
    try:
        RESULTS[name] = value()
    except NameError:  # its section has not run to its end
        MISSING.setdefault(section, []).append(name)

for name, value in RESULTS.items():
    print("%-52s %.4g" % (name, value))
out_of_range = ["%s = %.4g, expected between %.4g and %.4g" % (name, RESULTS[name], lo, hi)
                for name, (lo, hi) in EXPECTED.items() if name in RESULTS and not lo <= RESULTS[name] <= hi]
missing = ["section %s: %s" % (section, ", ".join(names)) for section, names in MISSING.items()]
assert not out_of_range, ("these results are outside the ranges this notebook states:\n  "
                          + "\n  ".join(out_of_range + ["(missing) " + m for m in missing]))
if missing:
    raise ResultsMissing("these results are not computed yet, because their sections did not run to the end "
                         "(a function you have not written yet?): " + "; ".join(missing))
print("all results are in the stated ranges")
