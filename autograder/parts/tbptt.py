"""tbptt.py: gradient clipping by total norm and truncated backpropagation through time.

For each graded function: its input maker, its torch oracle, its cases and the known mistakes
that earn a hint. Oracles: torch.nn.utils.clip_grad_norm_ for clipping; for TBPTT the same RNN
language model written with F.embedding, torch.nn.RNN (see rnn_layers' oracle), F.linear and
F.cross_entropy, differentiated by autograd with .detach() of the carried hidden state at every
chunk boundary; training adds clip_grad_norm_ and an SGD step after every chunk. The FUNCTIONS
list at the bottom is this file's registry.
"""
import torch
import torch.nn.functional as F

from ..engine import forbidden
from ..engine.spec import Case, DictArg, GradedFunction
from .cases import BIG_WEIGHTS, cuda_cases, edge_cases, saturated_cases, size_one_cases
from .common import model_mistake, randint, randn, saturate, saturate_bias
from .rnn_layers import torch_rnn

FILE = "tbptt"
PARAMS = ("W_embed", "Wx", "Wh", "b", "W_out", "b_out")
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by total_norm + 1e-6


# --------------------------------------------------------------------------- oracles
def clip_grad_norm_oracle(i):
    names = sorted(k[len("grads."):] for k in i if k.startswith("grads."))
    ps = []
    for n in names:
        p = torch.zeros_like(i["grads." + n])
        p.grad = i["grads." + n].detach().clone()
        ps.append(p)
    total = torch.nn.utils.clip_grad_norm_(ps, i["max_norm"])
    out = {"clipped." + n: p.grad for n, p in zip(names, ps)}
    out["total_norm"] = total
    return out


def _chunks(T, k, drop_partial=False):
    starts = range(0, T - k + 1 if drop_partial else T, k)
    return [(s, min(s + k, T)) for s in starts]


def _params(i):
    return {n: i["params." + n] for n in PARAMS}


def _chunk_loss(p, x, y, h):
    """The language model on one chunk: loss (0-dim, summed over time, averaged over N), last state."""
    emb = F.embedding(x, p["W_embed"])  # (N, k, D)
    hs = torch_rnn(emb, h, p["Wx"], p["Wh"], p["b"])  # (N, k, H)
    scores = F.linear(hs, p["W_out"].T, p["b_out"])  # (N, k, V)
    N, k, V = scores.shape
    loss = F.cross_entropy(scores.reshape(N * k, V), y.reshape(N * k), reduction="sum") / N
    return loss, hs[:, -1]


def _tbptt(i, p=None, detach=True, carry=True, drop_partial=False, k=None):
    """Truncated BPTT by autograd: (total loss, chunk losses, grads by name, h_last)."""
    p = _params(i) if p is None else p
    k = i["k"] if k is None else k
    with torch.enable_grad():
        p = {n: v.detach().clone().requires_grad_(True) for n, v in p.items()}
        x, y, h = i["x"], i["y"], i["h0"]
        losses = []
        for s, e in _chunks(x.shape[1], k, drop_partial):
            start = (h.detach() if detach else h) if carry else i["h0"]
            loss, h = _chunk_loss(p, x[:, s:e], y[:, s:e], start)
            losses.append(loss)
        total = torch.stack(losses).sum()
        g = torch.autograd.grad(total, [p[n] for n in PARAMS])
    return total.detach(), [v.detach() for v in losses], dict(zip(PARAMS, g)), h.detach()


def _grads_out(loss, grads, h_last):
    out = {"loss": loss, "h_last": h_last}
    out.update({"grads." + n: grads[n] for n in PARAMS})
    return out


def truncated_bptt_grads_oracle(i):
    loss, _, g, h_last = _tbptt(i)
    return _grads_out(loss, g, h_last)


def _torch_clip(grads, max_norm):
    """clip_grad_norm_ on a dict of gradients: the clipped dict."""
    ps = []
    for n in PARAMS:
        p = torch.zeros_like(grads[n])
        p.grad = grads[n].clone()
        ps.append(p)
    torch.nn.utils.clip_grad_norm_(ps, max_norm)
    return {n: p.grad for n, p in zip(PARAMS, ps)}


def _train(i, clip=True, per_chunk=True, carry=True, drop_partial=False):
    """The TBPTT training loop (the oracle with no switch set): new params, chunk losses, h_last."""
    p = _params(i)
    x, y, h, k = i["x"], i["y"], i["h0"], i["k"]
    if not per_chunk:  # every chunk with the initial parameters, one update at the end
        _, losses, g, h = _tbptt(i, carry=carry, drop_partial=drop_partial)
        g = _torch_clip(g, i["max_norm"]) if clip else g
        new = {n: p[n] - i["lr"] * g[n] for n in PARAMS}
        return new, torch.stack(losses), h
    losses = []
    for s, e in _chunks(x.shape[1], k, drop_partial):
        chunk = {"x": x[:, s:e], "y": y[:, s:e], "h0": h if carry else i["h0"]}
        loss, _, g, h = _tbptt(chunk, p=p, k=k)
        g = _torch_clip(g, i["max_norm"]) if clip else g
        p = {n: p[n] - i["lr"] * g[n] for n in PARAMS}  # SGD step before the next chunk
        losses.append(loss)
    return p, torch.stack(losses), h


def _train_out(new, losses, h_last):
    out = {"losses": losses, "h_last": h_last}
    out.update({"new_params." + n: new[n] for n in PARAMS})
    return out


def tbptt_train_oracle(i):
    return _train_out(*_train(i))


# --------------------------------------------------------------------------- input makers
def make_clip(g, case):
    """Gradients with a chosen total norm relative to max_norm (opts: ratio, tensors, zero)."""
    D, H, V = (case.sizes[k] for k in "DHV")
    shapes = {"W_embed": (V, D), "Wx": (D, H), "Wh": (H, H), "b": (H,)}
    if case.opt("tensors") == "one":
        shapes = {"Wx": (D, H)}
    grads = {n: randn(g, *s) for n, s in shapes.items()}
    zero = case.opt("zero")
    if zero == "all":
        grads = {n: torch.zeros_like(v) for n, v in grads.items()}
    elif zero == "one":
        grads["b"] = torch.zeros_like(grads["b"])
    total = float(torch.stack([(v * v).sum() for v in grads.values()]).sum().sqrt())
    i = {"grads." + n: v for n, v in grads.items()}
    i["max_norm"] = total / case.opt("ratio", 4.0) if total > 0 else 1.0
    return i


def make_lm(g, case, train=False):
    N, T, V, D, H, k = (case.sizes[n] for n in ("N", "T", "V", "D", "H", "k"))
    s = case.opt("saturate") or 1.0  # large: half the units saturated, and scores where exp overflows
    i = {"x": randint(g, V, N, T), "y": randint(g, V, N, T), "h0": randn(g, N, H, scale=0.5),
         "params.W_embed": randn(g, V, D), "params.Wx": saturate(randn(g, D, H, scale=1 / D ** 0.5), case),
         "params.Wh": saturate(randn(g, H, H, scale=1 / H ** 0.5), case),
         "params.b": saturate_bias(randn(g, H, scale=0.5), case),
         "params.W_out": randn(g, H, V, scale=s / H ** 0.5), "params.b_out": randn(g, V, scale=0.5),
         "k": k}
    if train:
        i["lr"] = case.opt("lr", 0.5)
        i["max_norm"] = case.opt("max_norm", 1.0)
    return i


def _train_maker(g, case):
    return make_lm(g, case, train=True)


# --------------------------------------------------------------------------- mistakes
def _clip_model(kind):
    def model(i):
        grads = {k[len("grads."):]: v for k, v in i.items() if k.startswith("grads.")}
        m = i["max_norm"]
        total = torch.stack([(v * v).sum() for v in grads.values()]).sum().sqrt()
        if kind == "per_tensor":
            out = {n: v * min(1.0, m / (float(v.norm()) + CLIP_EPS)) if float(v.norm()) > m else v
                   for n, v in grads.items()}
        elif kind == "clamp":
            out = {n: v.clamp(-m, m) for n, v in grads.items()}
        elif kind == "always":
            out = {n: v * (m / (total + CLIP_EPS)) for n, v in grads.items()}
        elif kind == "sum_of_norms":
            total = sum(v.norm() for v in grads.values())
            out = {n: v * (m / (total + CLIP_EPS)) if total > m else v for n, v in grads.items()}
        elif kind == "squared":
            total = total * total
            out = {n: v * (m / (total + CLIP_EPS)) if total > m else v for n, v in grads.items()}
        res = {"clipped." + n: v for n, v in out.items()}
        res["total_norm"] = total
        return res
    return model


PER_TENSOR = "each tensor was clipped by its own norm: compute ONE total norm over all the tensors, " \
             "sqrt(sum of g**2 over every entry of every tensor), and scale every tensor by the same " \
             "factor max_norm / (total_norm + 1e-6)"
CLAMP = "this is clipping by value (clamp to [-max_norm, max_norm]); clip by norm instead: when the " \
        "total norm exceeds max_norm, multiply every tensor by max_norm / (total_norm + 1e-6)"
ALWAYS = "the gradients were scaled although their total norm is not above max_norm: scale only when " \
         "total_norm > max_norm, otherwise return them unchanged"
SUM_OF_NORMS = "total_norm is the sum of the tensors' norms; it must be the norm of all the entries " \
               "together: sqrt(sum over tensors of (norm of the tensor)**2)"
SQUARED = "total_norm is the sum of squares: take its square root"

FULL_BPTT = "the gradient flows back across chunk boundaries (this is full backpropagation through " \
            "time): treat the state carried into a chunk as a constant, i.e. drop the dh0 that " \
            "rnn_backward returns for each chunk, and backpropagate each chunk on its own"
NO_CARRY = "every chunk seems to start from h0: carry the hidden state the previous chunk ended with " \
           "(its last time step) into the next chunk"
AVERAGED = "the gradients are averaged over the chunks: the total gradient is the SUM of the chunks' " \
           "gradients (and the loss the sum of the chunks' losses)"
DROPPED = "the last, shorter chunk seems to be missing: when k does not divide T the last chunk has " \
          "T % k steps and still counts (range(0, T, k) covers it)"
PER_SEQUENCE = "the parameters seem to be updated once for the whole sequence: TBPTT updates after " \
               "every chunk (clip that chunk's gradients, p <- p - lr * g), and the next chunk runs " \
               "with the updated parameters"
NO_CLIP = "the update uses unclipped gradients: clip each chunk's gradients with " \
          "clip_grad_norm(grads, max_norm) before the step p <- p - lr * g (if you do, check that " \
          "clip_grad_norm passes its own checks: here it clipped nothing)"


def _averaged_model(i):
    loss, losses, g, h = _tbptt(i)
    n = len(losses)
    return _grads_out(loss / n, {k: v / n for k, v in g.items()}, h)


def _grads_average_only(i):
    loss, losses, g, h = _tbptt(i)
    n = len(losses)
    return _grads_out(loss, {k: v / n for k, v in g.items()}, h)


def _loss_model(**kw):
    def model(i):
        loss, _, g, h_last = _tbptt(i, **kw)
        return _grads_out(loss, g, h_last)
    return model


def _train_model(**kw):
    return lambda i: _train_out(*_train(i, **kw))


ASCENT = "the parameters moved along the gradient: a gradient-descent step subtracts it, " \
         "p <- p - lr * g (with the clipped g)"
FIRST_STATE = "the state carried into the next chunk must be the chunk's LAST hidden state, hs[:, -1] " \
              "(the state after its last step); this looks like its first one, hs[:, 0]"


def _ascent_model(i):
    """tbptt_train stepping up the gradient: p + lr * g is the right step with -lr."""
    return _train_out(*_train(dict(i, lr=-i["lr"])))


def _first_state_model(i):
    """truncated_bptt_grads carrying each chunk's first state (after its first step) into the next chunk."""
    with torch.enable_grad():
        p = {n: v.detach().clone().requires_grad_(True) for n, v in _params(i).items()}
        x, y, h = i["x"], i["y"], i["h0"]
        losses = []
        for s, e in _chunks(x.shape[1], i["k"]):
            loss, _ = _chunk_loss(p, x[:, s:e], y[:, s:e], h)
            h = _chunk_loss(p, x[:, s:s + 1], y[:, s:s + 1], h)[1].detach()  # the state after step s
            losses.append(loss)
        total = torch.stack(losses).sum()
        g = torch.autograd.grad(total, [p[n] for n in PARAMS])
    return _grads_out(total.detach(), dict(zip(PARAMS, g)), h)


# --------------------------------------------------------------------------- registry
CLIP_SMALL, CLIP_MEDIUM = dict(D=3, H=4, V=5), dict(D=8, H=16, V=30)
LM_SMALL = dict(N=2, T=6, V=5, D=3, H=4, k=3)
LM_MEDIUM = dict(N=4, T=12, V=10, D=6, H=7, k=5)
LM_EDGES = [("k = 1", dict(N=3, T=5, V=5, D=3, H=4, k=1), {}),
            ("k = T (one chunk)", dict(N=3, T=5, V=5, D=3, H=4, k=5), {}),
            ("k > T (one chunk)", dict(N=2, T=4, V=6, D=3, H=4, k=7), {}),
            ("N=1, long sequence T=25, k=4", dict(N=1, T=25, V=6, D=3, H=4, k=4), {})]
# Sizes of 1 no case above has (cases.size_one_cases), appended after every other case. clip_grad_norm:
# D, H and V are the gradients' shapes (W_embed (V, D), Wx (D, H), Wh (H, H), b (H,)). The language
# model: T=1 is one chunk of one step (k=2 > T); V=1, one word, makes every score's softmax 1: the
# loss and every gradient are exactly 0 (tbptt_train's steps change nothing), and the case checks
# the shapes and h_last.
CLIP_SIZE_ONE = size_one_cases(CLIP_SMALL, ["D", "H", "V"])
LM_SIZE_ONE = size_one_cases(dict(N=3, T=5, V=5, D=3, H=4, k=2), ["T", "V", "D", "H"])


def _clip_cases():
    f64 = torch.float64
    public_cuda, *hidden_cuda = cuda_cases(CLIP_SMALL, CLIP_MEDIUM)
    cases = [
        Case("float64, total norm above max_norm", CLIP_SMALL, f64, seed=1, opts=(("ratio", 4.0),)),
        public_cuda,
        Case("float64, total norm below max_norm", CLIP_SMALL, f64, seed=2, opts=(("ratio", 0.5),)),
        Case("float32, total norm above max_norm (dtype kept)", CLIP_SMALL, torch.float32, seed=3),
        Case("float64, medium", CLIP_MEDIUM, f64, hidden=True),
        Case("float32, medium", CLIP_MEDIUM, torch.float32, hidden=True),
        Case("one tensor, norm above", CLIP_SMALL, f64, hidden=True, opts=(("ratio", 10.0), ("tensors", "one"))),
        Case("one tensor, norm below", CLIP_SMALL, f64, hidden=True, opts=(("ratio", 0.2), ("tensors", "one"))),
        Case("all gradients zero", CLIP_SMALL, f64, hidden=True, opts=(("zero", "all"),)),
        Case("one zero tensor among others", CLIP_SMALL, f64, hidden=True, opts=(("zero", "one"),)),
        Case("norm far above max_norm (x1000)", CLIP_SMALL, f64, hidden=True, opts=(("ratio", 1000.0),)),
    ] + hidden_cuda
    return cases


def _lm_cases(train=False):
    f64, f32 = torch.float64, torch.float32
    short = dict(N=2, T=7, V=5, D=3, H=4, k=3)
    # large weights: saturated tanh, and scores of 50-100 where exp overflows in float32
    public_saturated, hidden_saturated = saturated_cases(short, LM_MEDIUM, BIG_WEIGHTS)
    public_cuda, *hidden_cuda = cuda_cases(LM_SMALL, LM_MEDIUM)
    cases = [
        Case("float64, k divides T", LM_SMALL, f64, seed=1),
        public_cuda,
        Case("float64, k does not divide T (short last chunk)", short, f64, seed=2),
        Case("float32, small (dtype kept)", short, f32, seed=3),
        public_saturated,
        Case("float64, medium", LM_MEDIUM, f64, hidden=True),
        Case("float32, medium", LM_MEDIUM, f32, hidden=True),
        hidden_saturated,
    ]
    cases += edge_cases(LM_EDGES)
    if train:
        cases.append(Case("max_norm large (no chunk is clipped)", short, f64, hidden=True,
                          opts=(("max_norm", 1e3),)))
    return cases + hidden_cuda


FUNCTIONS = [
    GradedFunction(
        name="clip_grad_norm", file=FILE, points=2,
        args=(DictArg("grads."), "max_norm"), returns=("clipped", "total_norm"),
        make=make_clip, oracle=clip_grad_norm_oracle,
        cases=_clip_cases() + CLIP_SIZE_ONE,
        mistakes=[model_mistake(PER_TENSOR, _clip_model("per_tensor")),
                  model_mistake(CLAMP, _clip_model("clamp")),
                  model_mistake(ALWAYS, _clip_model("always")),
                  model_mistake(SUM_OF_NORMS, _clip_model("sum_of_norms")),
                  model_mistake(SQUARED, _clip_model("squared"))]),
    GradedFunction(
        name="truncated_bptt_grads", file=FILE, points=5,
        args=("x", "y", "h0", DictArg("params."), "k"), returns=("loss", "grads", "h_last"),
        make=make_lm, oracle=truncated_bptt_grads_oracle,
        cases=_lm_cases() + LM_SIZE_ONE,
        forbidden_ops=forbidden.LAYERS_AND_LOG_SOFTMAX,
        mistakes=[model_mistake(FULL_BPTT, _loss_model(detach=False)),
                  model_mistake(NO_CARRY, _loss_model(carry=False)),
                  model_mistake(AVERAGED, _averaged_model),
                  model_mistake(AVERAGED, _grads_average_only),
                  model_mistake(DROPPED, _loss_model(drop_partial=True)),
                  model_mistake(FIRST_STATE, _first_state_model)]),
    GradedFunction(
        name="tbptt_train", file=FILE, points=4,
        args=("x", "y", "h0", DictArg("params."), "k", "lr", "max_norm"), returns=("new_params", "losses", "h_last"),
        make=_train_maker, oracle=tbptt_train_oracle,
        cases=_lm_cases(train=True) + LM_SIZE_ONE,
        forbidden_ops=forbidden.LAYERS_AND_LOG_SOFTMAX,
        mistakes=[model_mistake(PER_SEQUENCE, _train_model(per_chunk=False)),
                  model_mistake(NO_CLIP, _train_model(clip=False)),
                  model_mistake(NO_CARRY, _train_model(carry=False)),
                  model_mistake(DROPPED, _train_model(drop_partial=True)),
                  model_mistake(ASCENT, _ascent_model)]),
]
