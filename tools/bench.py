"""`make bench`: how fast the kit grades, and how fast the reference solutions run next to torch.

    python -m tools.bench [-o dist/bench.json] [--quick] [--sections one,batch,reference]
                               [--reps R] [--batch-n N] [--baseline-n K] [--jobs J] [--seed S]

Prints one table (measure, value, baseline, ratio, target, met?) and writes a JSON document.
Every ratio is value / baseline, both measured in the same run, each the median of interleaved
repetitions (the machine may be shared: compare ratios, not seconds across runs).

Sections
- one_submission: `python -m autograder grade solutions/torch --device cpu` as a subprocess, without
  and with the instructor tests, and the NumPy track's `grade solutions/numpy --track numpy
  --no-instructor-tests` beside them (the same checks: one track's time next to the other's, in one
  run), against a bare `python -c "import torch"`. The split into
  phases comes from `python -m tools.bench --phase-one ...`, which runs the same CLI
  in-process with timers wrapped around plans.build_plan, runner.grade, sandbox.Worker.start
  and instructor.run (nothing in the grader itself is instrumented).
- batch: `python -m autograder grade-batch DIR -o OUT --jobs J` on N submissions (copies of the
  reference, every tenth one a buggy variant from tests/buggy/), against one-by-one
  `python -m autograder grade` subprocesses on a sample of K of them, extrapolated to N; and
  grade-batch --no-forkserver (fresh workers, no zygote).
- reference_vs_torch: the reference solutions (solutions/torch/, imported in-process) against
  torch.nn with autograd at N=64, T=L=100, D=H=E=256: RNN (nn.RNN, tanh), LSTM (nn.LSTM),
  multi-head attention (nn.MultiheadAttention, 8 heads, one query), forward and
  forward+backward, float32 and float64, on the CPU (and CUDA when present, synchronized).

JSON schema "autograder-bench/1" (checked by `validate`):
{
  "schema": "autograder-bench/1",
  "quick": bool,
  "machine": {"cpu_count": int, "cpus_usable": int, "cpu_model": str|null, "torch": str,
              "torch_threads": int, "cuda_device": str|null, "python": str, "platform": str,
              "date": ISO-8601 str (UTC), "load_average": [float, float, float]|null (at the start),
              "load_average_end": [float, float, float]|null (at the end: a busy machine skews timings)},
  "sections": {
    "one_submission": null | {
        "submission": str, "device": str, "seed": int, "repetitions": int,
        "python_bare_s": float, "import_torch_s": float,
        "runs": {"no_instructor_tests" | "with_instructor_tests": {
            "command": [str], "end_to_end_s": float, "ratio_to_import_torch": float,
            "samples_s": [float], "end_to_end_from": "cli" (the command itself) | "phased" (--quick:
            the wall time of the phased run, the same CLI with timers),
            "phases_s": {"interpreter", "imports", "startup" (= interpreter + imports), "oracle",
                         "student" (runner.grade), "student_worker_start", "student_calls",
                         "instructor_tests", "other", "exit", "total": float >= 0}}}},
    "batch": null (not run) | {"status": "failed", "reason": str}
                  | {"status": "ok", "n": int, "buggy": int, "jobs": int, "seed": int,
                     "instructor_tests": bool, "command": [str], "batch_s": float,
                     "per_minute": float, "results_files": int,
                     "one_by_one": {"sample": int, "names": [str], "samples_s": [float],
                                    "per_submission_s": float, "extrapolated_s": float,
                                    "per_minute": float},
                     "ratio_to_one_by_one": float (batch_s / one_by_one.extrapolated_s),
                     "no_forkserver": {"batch_s": float, "per_minute": float,
                                              "ratio_to_default": float (batch_s / default batch_s)}},
    "reference_vs_torch": [{"layer": "rnn" | "lstm" | "multihead_attention", "device": str,
                            "dtype": "float32" | "float64", "sizes": {str: int}, "threads": int,
                            "repetitions": int, "max_rel_error": float,
                            "forward": {"reference_s", "torch_s", "ratio"},
                            "forward_backward": {"reference_s", "torch_s", "ratio"}}]
  },
  "targets": [{"name": str, "value": float, "limit": float, "met": bool (value <= limit)}]
}
Medians are reported; ratios are ratios of medians. Timings are for people to read: no test
asserts on them.
"""
import argparse
import datetime
import functools
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
from statistics import median
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCHEMA = "autograder-bench/1"
DEFAULT_OUTPUT = os.path.join(ROOT, "dist", "bench.json")

ONE_LIMIT = 2.5  # one submission end to end, as a multiple of `import torch`
BATCH_LIMIT_PER_100 = 120.0  # seconds for a batch of 100 submissions
LSTM_LIMIT = 3.0  # reference LSTM forward+backward, as a multiple of nn.LSTM + autograd
TARGET_ONE = "one submission (no instructor tests) / import torch"  # the targets' names (targets, table)
TARGET_BATCH = "batch: seconds per 100 submissions"
TARGET_LSTM = "reference LSTM forward+backward / nn.LSTM + autograd (cpu, %s)"  # % dtype

FULL = dict(reps=5, batch_n=100, baseline_n=5, ref_reps=5, sizes=dict(N=64, T=100, D=256, H=256, heads=8))
QUICK = dict(reps=1, batch_n=3, baseline_n=1, ref_reps=2, sizes=dict(N=4, T=5, D=8, H=8, heads=2))
PHASES = ("interpreter", "imports", "startup", "oracle", "student", "student_worker_start", "student_calls",
          "instructor_tests", "other", "exit", "total")
RUNS = ("no_instructor_tests", "with_instructor_tests", "numpy_no_instructor_tests")
RUN_SOLUTIONS = {"numpy_no_instructor_tests": "solutions/numpy"}  # the others: solutions/torch


def _grade_args(name):
    """`grade`'s arguments of one run (RUNS), after the submission folder."""
    return (["--track", "numpy"] if name.startswith("numpy") else []) + \
        (["--no-instructor-tests"] if name.endswith("no_instructor_tests") else [])
LAYERS = ("rnn", "lstm", "multihead_attention")


def _ratio(a, b):
    return a / b if b > 0 else math.inf


# --------------------------------------------------------------------------- machine
def machine_info():
    import torch

    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    from autograder.verbs.batch.run import default_jobs

    usable = default_jobs()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count() or 1,
        "cpus_usable": usable,
        "cpu_model": model,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "load_average": load,
        "load_average_end": None,
    }


# --------------------------------------------------------------------------- subprocesses
def _run(cmd, what):
    """Run cmd from the kit's root; its wall time in seconds. Raises RuntimeError when it fails."""
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError("%s exited with status %d:\n%s" % (what, p.returncode,
                                                                p.stderr.decode("utf-8", "replace")[-3000:]))
    return seconds


# --------------------------------------------------------------------------- 1. one submission
def phase_one(argv):
    """In the child: run `python -m autograder grade ARGV` in-process with timers; write the phases."""
    t_main = time.time()
    out = argv[argv.index("--phase-out") + 1]
    grade_argv = [a for i, a in enumerate(argv) if a != "--phase-out" and (i == 0 or argv[i - 1] != "--phase-out")]
    import torch  # noqa: F401  (what the grader imports, timed as such)

    from autograder import cli, config, registry  # noqa: F401  (what the grader imports, timed as such)
    from autograder.engine import plans, results, runner, sandbox  # noqa: F401
    from autograder.verbs import grade, instructor  # noqa: F401
    t_imports = time.time()
    spans = {"oracle": [], "student": [], "instructor_tests": [], "worker_start": []}

    def timed(key, f):
        @functools.wraps(f)
        def wrapper(*a, **k):
            t = time.time()
            try:
                return f(*a, **k)
            finally:
                spans[key].append((t, time.time()))
        return wrapper

    plans.build_plan = timed("oracle", plans.build_plan)
    runner.grade = timed("student", runner.grade)
    instructor.run = timed("instructor_tests", instructor.run)
    sandbox.Worker.start = timed("worker_start", sandbox.Worker.start)
    rc = cli.main(["grade"] + grade_argv)
    t_done = time.time()
    with open(out, "w") as f:
        json.dump({"rc": rc, "main": t_main, "imports": t_imports, "done": t_done, "spans": spans}, f)
    sys.stdout.flush()  # and leave as `python -m autograder` does (__main__.py): no interpreter teardown
    sys.stderr.flush()
    os._exit(rc or 0)


def _phases(t_spawn, t_exit, child):
    spans = child["spans"]

    def total(key):
        return sum(b - a for a, b in spans[key])

    student = total("student")
    in_student = sum(b - a for a, b in spans["worker_start"]
                     if any(s <= a and b <= e for s, e in spans["student"]))
    oracle, instr = total("oracle"), total("instructor_tests")
    interpreter = child["main"] - t_spawn
    imports = child["imports"] - child["main"]
    return {
        "interpreter": interpreter,
        "imports": imports,
        "startup": interpreter + imports,
        "oracle": oracle,
        "student": student,
        "student_worker_start": in_student,
        "student_calls": student - in_student,
        "instructor_tests": instr,
        "other": child["done"] - child["imports"] - oracle - student - instr,
        "exit": t_exit - child["done"],
        "total": t_exit - t_spawn,
    }


def bench_one(opts, tmp):
    py = sys.executable
    out = os.path.join(tmp, "results.json")
    grade_args = {name: [os.path.join(ROOT, RUN_SOLUTIONS.get(name, "solutions/torch")), "--device", "cpu",
                         "--seed", str(opts.seed), "-o", out] + _grade_args(name) for name in RUNS}
    samples = {"python": [], "torch": []}
    for name in RUNS:
        samples[name] = []
        samples[name + "/phases"] = []

    def bare(key, code):
        return lambda: samples[key].append(_run([py, "-c", code], "python -c %r" % code))

    def cli(name):
        return lambda: samples[name].append(_run([py, "-m", "autograder", "grade"] + grade_args[name],
                                                 "python -m autograder grade (%s)" % name))

    def phased(name):
        def go():
            phase_out = os.path.join(tmp, "phases.json")
            t_spawn = time.time()
            _run([py, "-m", "tools.bench", "--phase-one"] + grade_args[name] + ["--phase-out", phase_out],
                 "python -m tools.bench --phase-one (%s)" % name)
            t_exit = time.time()
            with open(phase_out) as f:
                samples[name + "/phases"].append(_phases(t_spawn, t_exit, json.load(f)))
        return go

    tasks = [bare("python", "pass"), bare("torch", "import torch")]
    for name in RUNS:  # --quick: the phased run's wall time stands for the CLI's (one process fewer)
        tasks += ([] if opts.quick else [cli(name)]) + [phased(name)]
    for rep in range(opts.reps):  # interleaved, starting one task later each repetition
        k = rep % len(tasks)
        for task in tasks[k:] + tasks[:k]:
            task()
    torch_s = median(samples["torch"])
    runs = {}
    for name in RUNS:
        if opts.quick:
            samples[name] = [s["total"] for s in samples[name + "/phases"]]
        e2e = median(samples[name])
        runs[name] = {
            "end_to_end_from": "phased" if opts.quick else "cli",
            "command": ["python", "-m", "autograder", "grade", RUN_SOLUTIONS.get(name, "solutions/torch"), "--device",
                        "cpu", "--seed", str(opts.seed), "-o", "results.json"] + _grade_args(name),
            "end_to_end_s": e2e,
            "ratio_to_import_torch": _ratio(e2e, torch_s),
            "samples_s": samples[name],
            "phases_s": {p: median([s[p] for s in samples[name + "/phases"]]) for p in PHASES},
        }
    return {"submission": "solutions/torch", "device": "cpu", "seed": opts.seed, "repetitions": opts.reps,
            "python_bare_s": median(samples["python"]), "import_torch_s": torch_s, "runs": runs}


# --------------------------------------------------------------------------- 2. batch
FALLBACK_BUGS = [  # used when tests/buggy/ is not there: one-line mistakes, (file, old, new)
    ("rnn_layers.py", "next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)", "next_h = x @ Wx + prev_h @ Wh + b"),
    ("lstm_layers.py", "next_h = o * tanh_c  # (N, H)", "next_h = o * next_c  # (N, H)"),
]


def _bugs():
    """[(name, file, [(old, new), ...])]: the tests/buggy/ corpus, or the fallback edits."""
    folder = os.path.join(ROOT, "tests")
    found = []
    if os.path.isdir(os.path.join(folder, "buggy")):
        import pkgutil

        sys.path.insert(0, folder)
        try:
            import buggy

            for info in pkgutil.iter_modules([os.path.dirname(buggy.__file__)]):
                mod = importlib.import_module("buggy." + info.name)
                found += [(b.name, b.file, list(b.edits)) for b in mod.BUGS]
        except Exception:
            found = []
        finally:
            sys.path.remove(folder)
    return found or [("fallback: " + old, f, [(old, new)]) for f, old, new in FALLBACK_BUGS]


def make_submissions(folder, n, buggy_every=10):
    """n submission folders: copies of solutions/torch/, every `buggy_every`-th (index 5, 15, ...) a buggy variant
    (the last one when n < buggy_every). Returns [(name, bug name or None)].
    """
    src = os.path.join(ROOT, "solutions", "torch")
    files = sorted(f for f in os.listdir(src) if f.endswith(".py"))
    bugs = _bugs()
    made = []
    used = 0
    for i in range(n):
        name = "sub%03d" % i
        dst = os.path.join(folder, name)
        os.makedirs(dst)
        for f in files:
            shutil.copy(os.path.join(src, f), dst)
        bug = None
        if i % buggy_every == buggy_every // 2 or (n < buggy_every and i == n - 1):
            for _ in range(len(bugs)):  # the next bug whose edits still apply to the solutions
                bname, bfile, edits = bugs[(used * 7) % len(bugs)]  # spread over the corpus
                used += 1
                path = os.path.join(dst, bfile)
                with open(path) as fh:
                    text = fh.read()
                if all(text.count(old) == 1 for old, _ in edits):
                    for old, new in edits:
                        text = text.replace(old, new)
                    with open(path, "w") as fh:
                        fh.write(text)
                    bug = bname
                    break
        made.append((name, bug))
    return made


def _count_results(folder):
    """How many results.json files grade-batch wrote under its output folder."""
    return sum(names.count("results.json") for _, _, names in os.walk(folder))


def bench_batch(opts, tmp):
    py = sys.executable
    subs_dir = os.path.join(tmp, "submissions")
    os.makedirs(subs_dir)
    made = make_submissions(subs_dir, opts.batch_n)
    common = ["--seed", str(opts.seed), "--device", "cpu"] + ([] if opts.instructor_tests else ["--no-instructor-tests"])
    # the one-by-one sample: the batch's share of buggy submissions, at least one when there is one
    buggy = [m for m in made if m[1]]
    k = min(opts.baseline_n, len(made))
    nb = min(len(buggy), max(1 if buggy else 0, round(k * len(buggy) / len(made)))) if k else 0
    sample = buggy[:nb] + [m for m in made if not m[1]][:k - nb]

    def one(name):
        out = os.path.join(tmp, "one-%s.json" % name)
        return _run([py, "-m", "autograder", "grade", os.path.join(subs_dir, name), "-o", out] + common,
                    "python -m autograder grade %s" % name)

    def batch(extra, out):
        cmd = [py, "-m", "autograder", "grade-batch", subs_dir, "-o", out, "--jobs", str(opts.jobs)] + common + extra
        return _run(cmd, "python -m autograder grade-batch %s" % " ".join(extra)), cmd

    try:  # interleaved: half the sample, the batch, the other half, the batch without the forkserver
        half = len(sample) // 2
        times = [one(name) for name, _ in sample[:half]]
        batch_s, cmd = batch([], os.path.join(tmp, "batch-out"))
        times += [one(name) for name, _ in sample[half:]]
        nofork_s, _ = batch(["--no-forkserver"], os.path.join(tmp, "batch-out-noforkserver"))
        nofork = {"batch_s": nofork_s, "per_minute": 60.0 * len(made) / nofork_s,
                  "ratio_to_default": _ratio(nofork_s, batch_s)}
    except RuntimeError as e:
        return {"status": "failed", "reason": str(e)}
    per = statistics.mean(times)
    extrapolated = per * len(made)
    return {
        "status": "ok", "n": len(made), "buggy": len(buggy), "jobs": opts.jobs, "seed": opts.seed,
        "instructor_tests": bool(opts.instructor_tests),
        "command": ["python", "-m", "autograder", "grade-batch", "DIR", "-o", "OUT", "--jobs", str(opts.jobs)] + common,
        "batch_s": batch_s, "per_minute": 60.0 * len(made) / batch_s,
        "results_files": _count_results(os.path.join(tmp, "batch-out")),
        "one_by_one": {"sample": len(sample), "names": [n for n, _ in sample], "samples_s": times,
                       "per_submission_s": per, "extrapolated_s": extrapolated, "per_minute": 60.0 / per},
        "ratio_to_one_by_one": _ratio(batch_s, extrapolated),
        "no_forkserver": nofork,
    }


# --------------------------------------------------------------------------- 3. reference vs torch
def _setups(layer, sizes, dtype, device):
    """(ref_fwd, ref_fwdbwd, torch_fwd, torch_fwdbwd, agreement) closures for one layer."""
    import torch

    from autograder import paths
    from autograder.engine import speed
    from autograder.engine.compare import relative_error

    g = torch.Generator().manual_seed(0)
    N, T, D, H = sizes["N"], sizes["T"], sizes["D"], sizes["H"]

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype=dtype, device=device)

    def leaf(t):
        return t.detach().clone().requires_grad_(True)

    if layer in ("rnn", "lstm"):
        G = 4 if layer == "lstm" else 1
        x, h0 = randn(N, T, D), randn(N, H, scale=0.5)
        Wx, Wh, b = randn(D, G * H, scale=D ** -0.5), randn(H, G * H, scale=H ** -0.5), randn(G * H, scale=0.1)
        dh = randn(N, T, H)
        if layer == "rnn":
            mod = speed.reference_module(os.path.join(paths.solutions("torch"), "rnn_layers.py"))
            fwd, bwd = mod.rnn_forward, mod.rnn_backward
            m = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True, dtype=dtype, device=device)
            perm = torch.arange(H, device=device)
        else:
            mod = speed.reference_module(os.path.join(paths.solutions("torch"), "lstm_layers.py"))
            fwd, bwd = mod.lstm_forward, mod.lstm_backward
            m = torch.nn.LSTM(D, H, batch_first=True, dtype=dtype, device=device)
            perm = torch.cat([torch.arange(j * H, (j + 1) * H, device=device) for j in (0, 1, 3, 2)])  # i,f,g,o
        with torch.no_grad():
            m.weight_ih_l0.copy_(Wx[:, perm].T)
            m.weight_hh_l0.copy_(Wh[:, perm].T)
            m.bias_ih_l0.copy_(b[perm])
            m.bias_hh_l0.zero_()
        xl, h0l = leaf(x), leaf(h0.unsqueeze(0))
        state = h0l if layer == "rnn" else (h0l, torch.zeros_like(h0l))
        wrt = [xl, h0l] + list(m.parameters())

        def ref_fwd():
            return fwd(x, h0, Wx, Wh, b)

        def ref_fb():
            h, cache = fwd(x, h0, Wx, Wh, b)
            return h, bwd(dh, cache)

        def torch_fwd():
            return m(xl, state)[0]

        def torch_fb():
            h = m(xl, state)[0]
            return h, torch.autograd.grad(h, wrt, dh)
    else:
        heads = sizes["heads"]
        E, L = H, T
        q, K, V = randn(N, E), randn(N, L, E), randn(N, L, E)
        Wq, Wk, Wv, Wo = (randn(E, E, scale=E ** -0.5) for _ in range(4))
        dh = randn(N, E)
        mod = speed.reference_module(os.path.join(paths.solutions("torch"), "attention.py"))
        fwd, bwd = mod.multihead_attention_forward, mod.multihead_attention_backward
        m = torch.nn.MultiheadAttention(E, heads, bias=False, batch_first=True, dtype=dtype, device=device)
        with torch.no_grad():
            m.in_proj_weight.copy_(torch.cat([Wq.T, Wk.T, Wv.T]))
            m.out_proj.weight.copy_(Wo.T)
        ql, Kl, Vl = leaf(q.unsqueeze(1)), leaf(K), leaf(V)
        wrt = [ql, Kl, Vl] + list(m.parameters())
        dout = dh.unsqueeze(1)

        def ref_fwd():
            return fwd(q, K, V, Wq, Wk, Wv, Wo, heads)

        def ref_fb():
            out, _, cache = fwd(q, K, V, Wq, Wk, Wv, Wo, heads)
            return out, bwd(dh, cache)

        def torch_fwd():
            return m(ql, Kl, Vl, need_weights=True, average_attn_weights=False)

        def torch_fb():
            out = m(ql, Kl, Vl, need_weights=True, average_attn_weights=False)[0]
            return out.squeeze(1), torch.autograd.grad(out, wrt, dout)

    def agreement():
        """Largest relative error between the two: the output and the first input's gradient."""
        (out_r, grads_r), (out_t, grads_t) = ref_fb(), torch_fb()
        errs = [relative_error(out_r.detach().cpu(), out_t.detach().cpu())[0],
                relative_error(grads_r[0].cpu(), grads_t[0].reshape(grads_r[0].shape).cpu())[0]]
        return max(errs)

    return ref_fwd, ref_fb, torch_fwd, torch_fb, agreement


def bench_reference(opts):
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    dtypes = [torch.float32, torch.float64]
    sizes = opts.sizes
    rows = []
    for device in devices:
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

        def sync(device=device):
            if device == "cuda":
                torch.cuda.synchronize()

        def timed(f, sync=sync):
            sync()
            t = time.perf_counter()
            f()
            sync()
            return time.perf_counter() - t

        for dtype in dtypes:
            for layer in LAYERS:
                ref_fwd, ref_fb, torch_fwd, torch_fb, agreement = _setups(layer, sizes, dtype, device)
                err = agreement()  # also the warm-up
                samples = {k: [] for k in ("ref_fwd", "torch_fwd", "ref_fb", "torch_fb")}
                pairs = [("ref_fwd", ref_fwd), ("torch_fwd", torch_fwd), ("ref_fb", ref_fb), ("torch_fb", torch_fb)]
                for rep in range(opts.ref_reps):
                    for key, f in (pairs if rep % 2 == 0 else pairs[::-1]):
                        samples[key].append(timed(f))
                med = {k: median(v) for k, v in samples.items()}
                shown = dict(N=sizes["N"], T=sizes["T"], D=sizes["D"], H=sizes["H"]) if layer != "multihead_attention" \
                    else dict(N=sizes["N"], L=sizes["T"], E=sizes["H"], heads=sizes["heads"])
                rows.append({
                    "layer": layer, "device": device, "dtype": str(dtype).replace("torch.", ""), "sizes": shown,
                    "threads": torch.get_num_threads(), "repetitions": opts.ref_reps, "max_rel_error": float(err),
                    "forward": {"reference_s": med["ref_fwd"], "torch_s": med["torch_fwd"],
                                "ratio": _ratio(med["ref_fwd"], med["torch_fwd"])},
                    "forward_backward": {"reference_s": med["ref_fb"], "torch_s": med["torch_fb"],
                                         "ratio": _ratio(med["ref_fb"], med["torch_fb"])},
                })
    return rows


# --------------------------------------------------------------------------- targets, table
def targets(sections):
    out = []
    one = sections.get("one_submission")
    if one:
        value = one["runs"]["no_instructor_tests"]["ratio_to_import_torch"]
        out.append({"name": TARGET_ONE, "value": value,
                    "limit": ONE_LIMIT, "met": value <= ONE_LIMIT})
    batch = sections.get("batch")
    if batch and batch.get("status") == "ok":
        value = batch["batch_s"] * 100.0 / batch["n"]
        out.append({"name": TARGET_BATCH, "value": value, "limit": BATCH_LIMIT_PER_100,
                    "met": value <= BATCH_LIMIT_PER_100})
    for row in sections.get("reference_vs_torch") or []:
        if row["layer"] == "lstm" and row["device"] == "cpu":
            value = row["forward_backward"]["ratio"]
            out.append({"name": TARGET_LSTM % row["dtype"],
                        "value": value, "limit": LSTM_LIMIT, "met": value <= LSTM_LIMIT})
    return out


def _s(x):
    return "%.2f s" % x


def _ms(x):
    return "%.1f ms" % (x * 1e3) if x < 10 else _s(x)


def _x(r):
    return "%.2fx" % r


def table(doc):
    rows = []  # (measure, value, baseline, ratio, target, met) or a section title (str)
    met = {t["name"]: t for t in doc["targets"]}

    def verdict(name):
        t = met.get(name)
        return ("yes" if t["met"] else "NO") if t else ""

    sec = doc["sections"]
    one = sec.get("one_submission")
    if one:
        rows.append("1. Grading one submission on CPU, end to end (median of %d interleaved runs; baseline: "
                    "python -c \"import torch\" = %s, bare python = %s)"
                    % (one["repetitions"], _s(one["import_torch_s"]), _s(one["python_bare_s"])))
        torch_s = one["import_torch_s"]
        for name, label in (("no_instructor_tests", "grade solutions/torch --no-instructor-tests"),
                            ("with_instructor_tests", "grade solutions/torch (with instructor tests)"),
                            ("numpy_no_instructor_tests", "NumPy track: grade solutions/numpy --no-instructor-tests")):
            run = one["runs"][name]
            tname = TARGET_ONE
            rows.append((label, _s(run["end_to_end_s"]), "import torch " + _s(torch_s),
                         _x(run["ratio_to_import_torch"]),
                         "<= %gx" % ONE_LIMIT if name == "no_instructor_tests" else "",
                         verdict(tname) if name == "no_instructor_tests" else ""))
            p = run["phases_s"]
            for key, text in (("startup", "start-up (interpreter %s + imports %s)"
                               % (_s(p["interpreter"]), _s(p["imports"]))),
                              ("oracle", "oracle work (plans.build_plan)"),
                              ("student", "student calls (runner.grade: worker start %s + calls %s)"
                               % (_s(p["student_worker_start"]), _s(p["student_calls"]))),
                              ("instructor_tests", "instructor tests (instructor.run)"),
                              ("other", "other (config, table, results.json)"),
                              ("exit", "interpreter exit (torch's teardown)")):
                if key == "instructor_tests" and name.endswith("no_instructor_tests"):
                    continue
                rows.append(("  " + text, _s(p[key]), "import torch", _x(_ratio(p[key], torch_s)), "", ""))
            rows.append(("  total of the phased run", _s(p["total"]), "import torch", _x(_ratio(p["total"], torch_s)),
                         "", ""))
    batch = sec.get("batch")
    if batch is not None:
        if batch.get("status") != "ok":
            rows.append("2. Batch throughput: %s (%s)" % (batch["status"], batch["reason"].splitlines()[0][:200]))
        else:
            ob = batch["one_by_one"]
            rows.append("2. Batch throughput: %d submissions (%d buggy), --jobs %d, %s; one by one measured on %d "
                        "of them and extrapolated per submission"
                        % (batch["n"], batch["buggy"], batch["jobs"],
                           "with instructor tests" if batch["instructor_tests"] else "no instructor tests",
                           ob["sample"]))
            tname = TARGET_BATCH
            rows.append(("grade-batch, %d submissions" % batch["n"],
                         "%s (%.0f/min)" % (_s(batch["batch_s"]), batch["per_minute"]),
                         "one by one %s (%.0f/min, extrap.)" % (_s(ob["extrapolated_s"]), ob["per_minute"]),
                         _x(batch["ratio_to_one_by_one"]), "<= %g s per 100" % BATCH_LIMIT_PER_100, verdict(tname)))
            nf = batch["no_forkserver"]
            rows.append(("grade-batch --no-forkserver", "%s (%.0f/min)" % (_s(nf["batch_s"]), nf["per_minute"]),
                         "default " + _s(batch["batch_s"]), _x(nf["ratio_to_default"]), "", ""))
    ref = sec.get("reference_vs_torch")
    if ref:
        r0 = ref[0]
        rows.append("3. Reference solutions vs torch.nn + autograd (median of %d interleaved runs, %d threads; "
                    "RNN/LSTM N,T,D,H = %s; attention N,L,E,heads = %s)"
                    % (r0["repetitions"], r0["threads"],
                       ",".join(str(v) for v in next(r["sizes"] for r in ref if r["layer"] == "lstm").values()),
                       ",".join(str(v) for v in next(r["sizes"] for r in ref
                                                     if r["layer"] == "multihead_attention").values())))
        torch_names = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "multihead_attention": "nn.MultiheadAttention"}
        for r in ref:
            for part, label in (("forward", "fwd"), ("forward_backward", "fwd+bwd")):
                m = r[part]
                tname = TARGET_LSTM % r["dtype"]
                has_target = r["layer"] == "lstm" and r["device"] == "cpu" and part == "forward_backward"
                rows.append(("%s %s %s %s" % (r["layer"], label, r["device"], r["dtype"]), _ms(m["reference_s"]),
                             "%s %s" % (torch_names[r["layer"]], _ms(m["torch_s"])), _x(m["ratio"]),
                             "<= %gx" % LSTM_LIMIT if has_target else "", verdict(tname) if has_target else ""))
    header = ("measure", "value", "baseline", "ratio", "target", "met?")
    cells = [r for r in rows if not isinstance(r, str)] + [header]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        return "  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    out = [line(header), "-" * len(line(header))]
    for r in rows:
        out.append(("\n" + r) if isinstance(r, str) else line(r))
    m = doc["machine"]
    out.append("")
    out.append("machine: %d CPUs (%d usable, %s), torch %s (%d threads), CUDA %s, Python %s, %s; load average "
               "%s at the start, %s at the end" % (m["cpu_count"], m["cpus_usable"], m["cpu_model"] or "?", m["torch"],
                                                   m["torch_threads"], m["cuda_device"] or "none", m["python"],
                                                   m["date"], m["load_average"], m["load_average_end"]))
    return "\n".join(out)


# --------------------------------------------------------------------------- schema
def _num(x, positive=False):
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return ok and (x > 0 if positive else x >= 0)


def validate(doc):
    """The problems of a bench document against schema autograder-bench/1 ([] when it is valid)."""
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)
        return cond

    def close(a, b, what):
        need(_num(a) and _num(b) and abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-12), what)

    def keys(d, names, where):
        return need(isinstance(d, dict), "%s is not an object" % where) and \
            all([need(k in d, "%s lacks %r" % (where, k)) for k in names])

    if not keys(doc, ("schema", "quick", "machine", "sections", "targets"), "document"):
        return problems
    need(doc["schema"] == SCHEMA, "schema is %r, not %r" % (doc["schema"], SCHEMA))
    need(isinstance(doc["quick"], bool), "quick is not a bool")
    m = doc["machine"]
    if keys(m, ("cpu_count", "cpus_usable", "cpu_model", "torch", "torch_threads", "cuda_device", "python",
                "platform", "date", "load_average", "load_average_end"), "machine"):
        for k in ("cpu_count", "cpus_usable", "torch_threads"):
            need(isinstance(m[k], int) and not isinstance(m[k], bool) and m[k] > 0,
                 "machine.%s is not a positive int" % k)
        for k in ("torch", "python", "platform", "date"):
            need(isinstance(m[k], str) and m[k], "machine.%s is not a string" % k)
        for k in ("cpu_model", "cuda_device"):
            need(m[k] is None or isinstance(m[k], str), "machine.%s is neither null nor a string" % k)
        for k in ("load_average", "load_average_end"):
            need(m[k] is None or (isinstance(m[k], list) and len(m[k]) == 3 and all(_num(v) for v in m[k])),
                 "machine.%s is neither null nor three numbers" % k)
        try:
            datetime.datetime.fromisoformat(m["date"])
        except (TypeError, ValueError):
            problems.append("machine.date is not ISO 8601")
    sec = doc["sections"]
    if not keys(sec, ("one_submission", "batch", "reference_vs_torch"), "sections"):
        return problems
    one = sec["one_submission"]
    if one is not None and keys(one, ("submission", "device", "seed", "repetitions", "python_bare_s",
                                      "import_torch_s", "runs"), "one_submission"):
        need(isinstance(one["repetitions"], int) and one["repetitions"] > 0, "one_submission.repetitions")
        need(_num(one["import_torch_s"], True), "one_submission.import_torch_s is not a positive number")
        need(_num(one["python_bare_s"], True), "one_submission.python_bare_s is not a positive number")
        if keys(one["runs"], RUNS, "one_submission.runs"):
            for name in RUNS:
                run, where = one["runs"][name], "one_submission.runs.%s" % name
                if not keys(run, ("command", "end_to_end_s", "end_to_end_from", "ratio_to_import_torch", "samples_s",
                                  "phases_s"), where):
                    continue
                need(run["end_to_end_from"] in ("cli", "phased"), where + ".end_to_end_from is not cli or phased")
                need(isinstance(run["command"], list) and all(isinstance(c, str) for c in run["command"]),
                     where + ".command")
                need(_num(run["end_to_end_s"], True), where + ".end_to_end_s is not a positive number")
                need(isinstance(run["samples_s"], list) and len(run["samples_s"]) == one["repetitions"]
                     and all(_num(s, True) for s in run["samples_s"]), where + ".samples_s")
                if _num(run["end_to_end_s"], True) and _num(one["import_torch_s"], True):
                    close(run["ratio_to_import_torch"], run["end_to_end_s"] / one["import_torch_s"],
                          where + ".ratio_to_import_torch != end_to_end_s / import_torch_s")
                if keys(run["phases_s"], PHASES, where + ".phases_s"):
                    p = run["phases_s"]
                    for k in PHASES:
                        need(_num(p[k]), "%s.phases_s.%s is not a non-negative number" % (where, k))
                    need(_num(p["total"], True) and _num(p["startup"], True) and _num(p["student"], True),
                         where + ".phases_s: total, startup and student must be positive")
                    if name == "with_instructor_tests":
                        need(_num(p["instructor_tests"], True), where + ".phases_s.instructor_tests must be positive")
    batch = sec["batch"]
    if batch is not None and keys(batch, ("status",), "batch"):
        if batch["status"] == "failed":
            need(isinstance(batch.get("reason"), str), "batch.reason is not a string")
        elif need(batch["status"] == "ok", "batch.status is %r" % batch["status"]) and keys(
                batch, ("n", "buggy", "jobs", "seed", "instructor_tests", "command", "batch_s", "per_minute",
                        "results_files", "one_by_one", "ratio_to_one_by_one", "no_forkserver"), "batch"):
            for k in ("n", "jobs"):
                need(isinstance(batch[k], int) and batch[k] > 0, "batch.%s is not a positive int" % k)
            need(isinstance(batch["buggy"], int) and 0 <= batch["buggy"] <= batch["n"], "batch.buggy")
            need(_num(batch["batch_s"], True), "batch.batch_s is not a positive number")
            if _num(batch["batch_s"], True):
                close(batch["per_minute"], 60.0 * batch["n"] / batch["batch_s"], "batch.per_minute != 60 n / batch_s")
            ob = batch["one_by_one"]
            if keys(ob, ("sample", "names", "samples_s", "per_submission_s", "extrapolated_s", "per_minute"),
                    "batch.one_by_one"):
                need(isinstance(ob["sample"], int) and ob["sample"] > 0 and len(ob["samples_s"]) == ob["sample"]
                     and all(_num(s, True) for s in ob["samples_s"]), "batch.one_by_one.samples_s")
                need(_num(ob["per_submission_s"], True), "batch.one_by_one.per_submission_s")
                if _num(ob["per_submission_s"], True):
                    close(ob["extrapolated_s"], ob["per_submission_s"] * batch["n"],
                          "batch.one_by_one.extrapolated_s != per_submission_s * n")
                    if _num(batch["batch_s"], True):
                        close(batch["ratio_to_one_by_one"], batch["batch_s"] / (ob["per_submission_s"] * batch["n"]),
                              "batch.ratio_to_one_by_one != batch_s / extrapolated_s")
            nf = batch["no_forkserver"]
            if keys(nf, ("batch_s", "per_minute", "ratio_to_default"), "batch.no_forkserver"):
                need(_num(nf["batch_s"], True), "batch.no_forkserver.batch_s")
                if _num(nf["batch_s"], True) and _num(batch["batch_s"], True):
                    close(nf["ratio_to_default"], nf["batch_s"] / batch["batch_s"],
                          "batch.no_forkserver.ratio_to_default != batch_s / default batch_s")
    ref = sec["reference_vs_torch"]
    if need(isinstance(ref, list), "reference_vs_torch is not a list"):
        for i, r in enumerate(ref):
            where = "reference_vs_torch[%d]" % i
            if not keys(r, ("layer", "device", "dtype", "sizes", "threads", "repetitions", "max_rel_error",
                            "forward", "forward_backward"), where):
                continue
            need(r["layer"] in LAYERS, where + ".layer is %r" % r["layer"])
            need(r["dtype"] in ("float32", "float64"), where + ".dtype is %r" % r["dtype"])
            need(isinstance(r["sizes"], dict) and all(isinstance(v, int) and v > 0 for v in r["sizes"].values()),
                 where + ".sizes")
            need(isinstance(r["threads"], int) and r["threads"] > 0, where + ".threads")
            need(isinstance(r["repetitions"], int) and r["repetitions"] > 0, where + ".repetitions")
            need(_num(r["max_rel_error"]), where + ".max_rel_error is not a finite non-negative number")
            for part in ("forward", "forward_backward"):
                t = r[part]
                if keys(t, ("reference_s", "torch_s", "ratio"), "%s.%s" % (where, part)):
                    ok = need(_num(t["reference_s"], True) and _num(t["torch_s"], True),
                              "%s.%s: times must be positive numbers" % (where, part))
                    if ok:
                        close(t["ratio"], t["reference_s"] / t["torch_s"],
                              "%s.%s.ratio != reference_s / torch_s" % (where, part))
    if need(isinstance(doc["targets"], list), "targets is not a list"):
        for i, t in enumerate(doc["targets"]):
            where = "targets[%d]" % i
            if keys(t, ("name", "value", "limit", "met"), where):
                need(isinstance(t["name"], str) and t["name"], where + ".name")
                need(_num(t["value"]) and _num(t["limit"], True), where + ": value and limit must be numbers")
                need(isinstance(t["met"], bool), where + ".met is not a bool")
                if _num(t["value"]) and _num(t["limit"]) and isinstance(t["met"], bool):
                    need(t["met"] == (t["value"] <= t["limit"]), where + ".met disagrees with value <= limit")
        names = [t.get("name") for t in doc["targets"] if isinstance(t, dict)]
        need(len(names) == len(set(names)), "targets have duplicate names")
    return problems


# --------------------------------------------------------------------------- main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--phase-one"]:
        return phase_one(argv[1:])
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help="where to write the JSON (default dist/bench.json)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, one repetition, no separate CLI runs in section 1, a batch of 3 (for the tests)")
    p.add_argument("--sections", default="one,batch,reference", help="comma-separated: one, batch, reference")
    p.add_argument("--reps", type=int, help="repetitions of section 1 (default 5; quick 1)")
    p.add_argument("--ref-reps", type=int, help="repetitions of section 3 (default 5; quick 2)")
    p.add_argument("--batch-n", type=int, help="submissions in the batch (default 100; quick 3)")
    p.add_argument("--baseline-n", type=int, help="submissions graded one by one (default 5; quick 1)")
    p.add_argument("--jobs", type=int, help="grade-batch --jobs (default: the usable CPUs)")
    p.add_argument("--threads", type=int, help="torch threads of section 3, both sides (default: torch's own)")
    p.add_argument("--seed", type=int, default=1, help="--seed of every grading run (default 1)")
    p.add_argument("--batch-instructor-tests", dest="instructor_tests", action="store_true",
                   help="run the instructor tests in section 2 too (default: --no-instructor-tests on both sides)")
    opts = p.parse_args(argv)
    base = QUICK if opts.quick else FULL
    for k in ("reps", "ref_reps", "batch_n", "baseline_n"):
        if getattr(opts, k) is None:
            setattr(opts, k, base[k])
    opts.sizes = base["sizes"]
    if opts.jobs is None:
        from autograder.verbs.batch.run import default_jobs

        opts.jobs = default_jobs()
    wanted = set(s.strip() for s in opts.sections.split(",") if s.strip())
    unknown = wanted - {"one", "batch", "reference"}
    if unknown:
        p.error("unknown sections: %s" % ", ".join(sorted(unknown)))
    doc = {"schema": SCHEMA, "quick": bool(opts.quick), "machine": machine_info(),
           "sections": {"one_submission": None, "batch": None, "reference_vs_torch": []}, "targets": []}
    tmp = tempfile.mkdtemp(prefix="autograder-bench-")
    try:
        if "one" in wanted:
            print("bench: 1. one submission (%d repetitions)..." % opts.reps, file=sys.stderr, flush=True)
            os.makedirs(os.path.join(tmp, "one"))
            doc["sections"]["one_submission"] = bench_one(opts, os.path.join(tmp, "one"))
        if "batch" in wanted:
            print("bench: 2. batch of %d..." % opts.batch_n, file=sys.stderr, flush=True)
            os.makedirs(os.path.join(tmp, "batch"))
            doc["sections"]["batch"] = bench_batch(opts, os.path.join(tmp, "batch"))
        if "reference" in wanted:
            print("bench: 3. reference vs torch (%d repetitions)..." % opts.ref_reps, file=sys.stderr, flush=True)
            doc["sections"]["reference_vs_torch"] = bench_reference(opts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc["targets"] = targets(doc["sections"])
    try:
        doc["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    problems = validate(doc)
    if problems:  # a bug of this file: say so, but keep the numbers
        print("bench: the document does not match its schema: %s" % "; ".join(problems), file=sys.stderr)
    out_dir = os.path.dirname(os.path.abspath(opts.output))
    os.makedirs(out_dir, exist_ok=True)
    with open(opts.output, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(table(doc))
    print("\nwrote %s" % opts.output)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
