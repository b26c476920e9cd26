"""What a batch wrote, for people: scores.csv, summary.md / summary.json, histogram.png; and `merge`.

Everything here is read back from an output folder of `grade-batch` (batch.json and each student's
results/<student>/grading.json), so a resumed batch, an interrupted one and the merge of several
shards are reported by the same code. No torch here: `merge` runs anywhere the files are.

    scores.csv     student, sid, email, name (when known), total, max, one column per graded
                   function, instructor_tests (when they ran), gradescope_score (an export's own
                   score, when known), status (graded, grader failed, bad input, not graded yet),
                   note; one row per student, sorted
    summary.md     count, mean, median, min, max; per function: full marks, pass rate per check,
                   the most common hints and first failures (numbers folded into #); bad inputs
                   with their reasons; grader failures; identical submissions
    summary.json   the same, for scripts
    histogram.png  the total scores (matplotlib, Agg backend; skipped with a note without it)

Everything is written owner-only (folders made here 0700, files 0600: hidden details and other
students' results stay the instructor's), and no existing folder's mode is changed. A text cell
of scores.csv that begins with =, +, -, @, a tab or a carriage return (a formula in a spreadsheet:
names come from the students) is prefixed with a single quote; the score columns, numbers the kit
wrote, are left as they are. The summaries say which isolation layers the gradings ran under
(each grading.json records its own), merged folders included.
"""
import csv
import io
import json
import os
import re
import stat
import statistics
from collections import Counter

from ...engine import archive, results

MANIFEST = "batch.json"
MERGED = "merge.json"
RESULTS = "results"
GRADING = "grading.json"
REPORTS = ("scores.csv", "summary.md", "summary.json", "histogram.png")
TOP = 8  # hints and first failures listed per function
DIR_MODE = 0o700  # what grade-batch and merge create: owner-only
FILE_MODE = 0o600


class MergeError(Exception):
    """Folders that cannot be merged (not batch outputs, or graded differently)."""


def fmt(x):
    """A score as people write it: 6, 2.5, 1.3333."""
    if x is None:
        return ""
    return ("%.4f" % x).rstrip("0").rstrip(".")


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")


def normalize(message):
    """A first failure as the class shares it: first line, numbers (errors, indices, values) as #."""
    line = (message or "").split("\n")[0].strip()
    return _NUMBER.sub("#", line)


# --------------------------------------------------------------------------- owner-only writes
def printable(text):
    """Text that came from a student (a file name, a reason that quotes one) as one printable line: every
    character that is not printable (line breaks, ESC, bidirectional overrides) as its escape, so that it
    can neither start a line of its own in summary.md nor drive the instructor's terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def _md(text):
    """printable(text), also without what would end a table cell or a code span."""
    return printable(text).replace("`", "'").replace("|", "/")


def make_private_dir(path):
    """Make the folder `path` owner-only (0700) when it does not exist (missing parents are made as
    usual); an existing one is left as it is. True when it was made here."""
    if os.path.isdir(path):
        return False
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if os.path.isdir(path):  # made meanwhile by another run: not ours to change
            return False
        raise
    os.chmod(path, DIR_MODE)  # whatever the umask
    return True


def open_to_others(path):
    """The mode of the folder `path` when other users (group or others) have any access to it, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def folder_warning(path, mode):
    """What is said of an existing output folder that other users may enter (its mode is not changed)."""
    return ("%s is open to other users (mode %04o): its files are written owner-only, but the folder's mode is "
            "left as it is (chmod go-rwx %s to close it)" % (path, mode, path))


def write_private(path, data):
    """Write the bytes `data` to `path` atomically, owner-only (0600)."""
    archive.write_atomic(path, lambda f: f.write(data), mode=FILE_MODE)


def write_json(data, path):
    """A JSON file written atomically and owner-only."""
    results.write_json(data, path, mode=FILE_MODE)


# --------------------------------------------------------------------------- reading back
def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_record(outdir, key):
    """A student's grading record (grading.json) when their results.json is there too, else None."""
    folder = os.path.join(outdir, RESULTS, key)
    if not os.path.isfile(os.path.join(folder, "results.json")):
        return None
    rec = read_json(os.path.join(folder, GRADING))
    return rec if isinstance(rec, dict) and rec.get("student") == key else None


def record_of(outdir, key, source):
    """load_record's record when it is this very submission's (`source`), else None: a record under the same
    key of another source (written before keys were stable) is no grading of this one."""
    rec = load_record(outdir, key)
    return rec if rec is not None and rec.get("source") == source else None


def inside(path, folder):
    """Whether `path` is `folder` or lies under it (both absolute, as the caller normalises them)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def read_manifest(outdir):
    m = read_json(os.path.join(outdir, MANIFEST))
    if not isinstance(m, dict) or "items" not in m:
        raise MergeError("%s holds no readable %s: it is not an output folder of grade-batch" % (outdir, MANIFEST))
    return m


def view_of(outdir, manifest=None):
    """What the reports show for one output folder."""
    m = manifest if manifest is not None else read_manifest(outdir)
    records, missing, bad = [], [], []
    for it in m["items"]:
        if it.get("problem"):
            bad.append(it)
            continue
        rec = record_of(outdir, it["key"], it.get("source"))
        (records.append(rec) if rec is not None else missing.append(it))
    meta = {k: m.get(k) for k in ("seed", "seed_from", "device", "functions", "fingerprint", "instructor_tests",
                                  "input", "input_kind", "all_submissions")}
    meta["shards"] = [m["shard"]] if m.get("shard") else []
    return {"meta": meta, "records": records, "bad": bad, "missing": missing,
            "identical": m.get("identical", []), "notes": list(m.get("notes", []))}


def write_outdir(outdir):
    """Write the reports of one grade-batch output folder; returns their paths."""
    return write(outdir, view_of(outdir))


# --------------------------------------------------------------------------- the reports
def _rate(k, n):
    return round(k / n, 4) if n else None


def summarize(view):
    """summary.json's content."""
    meta, recs = view["meta"], sorted(view["records"], key=lambda r: r["student"])
    graded = [r for r in recs if r["status"] == "graded"]
    totals = [r["score"] for r in graded]
    max_total = max((r["max_score"] for r in graded), default=None)
    out = {"meta": meta, "graded": len(graded), "grader_failed": [], "bad_inputs": [], "not_graded_yet": [],
           "identical": view["identical"], "notes": list(view["notes"]), "incomplete": list(view.get("incomplete", []))}
    out["total"] = ({"count": len(totals), "max_score": max_total, "mean": round(statistics.fmean(totals), 4),
                     "median": statistics.median(totals), "min": min(totals), "max": max(totals),
                     "full_marks": sum(1 for r in graded if r["score"] >= r["max_score"] - 1e-9)}
                    if totals else {"count": 0})
    functions = {}
    for name in meta.get("functions") or []:
        rows = [f for r in graded for f in r["functions"] if f["name"] == name]
        n = len(rows)
        full = sum(1 for f in rows if f["score"] >= f["max_score"] - 1e-9)
        checks = {}
        for f in rows:
            for label, hidden, passed in f["checks"]:
                c = checks.setdefault(label, {"check": label, "hidden": hidden, "passed": 0, "of": 0})
                c["passed"] += bool(passed)
                c["of"] += 1
        for c in checks.values():
            c["rate"] = _rate(c["passed"], c["of"])
        hints = Counter(h for f in rows for h in f["hints"])
        firsts = Counter(normalize(f["first_failure"]) for f in rows if f["first_failure"])
        functions[name] = {
            "max_score": rows[0]["max_score"] if rows else None, "students": n, "full_marks": full,
            "pass_rate": _rate(full, n), "mean": round(statistics.fmean(f["score"] for f in rows), 4) if rows else None,
            "checks": list(checks.values()),
            "hints": [{"text": t, "students": k} for t, k in hints.most_common()],
            "first_failures": [{"text": t, "students": k} for t, k in firsts.most_common()]}
    out["functions"] = functions
    instr = [r["instructor"] for r in graded if r.get("instructor")]
    if instr:
        failed = Counter(name for i in instr for name in i["failed"])
        out["instructor_tests"] = {"students": len(instr), "max_score": max(i["max_score"] for i in instr),
                                   "mean": round(statistics.fmean(i["score"] for i in instr), 4),
                                   "full_marks": sum(1 for i in instr if i["score"] >= i["max_score"] - 1e-9),
                                   "failed": [{"test": t, "students": k} for t, k in failed.most_common()]}
    out["isolation"] = isolation_summary(graded)
    out["grader_failed"] = [{"student": r["student"], "source": r.get("source"), "reason": r.get("failure")}
                            for r in recs if r["status"] != "graded"]
    out["bad_inputs"] = [{"student": b["key"], "source": b["source"], "reason": b["problem"]}
                         for b in sorted(view["bad"], key=lambda b: (b["key"], b["source"]))]
    out["not_graded_yet"] = [{"student": m["key"], "source": m["source"], "reason": m.get("reason")}
                             for m in sorted(view["missing"], key=lambda m: m["key"])]
    return out


def isolation_summary(records):
    """Which isolation layers the gradings ran under: for each layer (as outcome.Report.isolation names
    it), in how many gradings it was active, and why it was not in the others. Gradings whose record
    holds no layers (graded before they were recorded) are counted as unreported."""
    layers, reported = {}, 0
    for r in records:
        iso = r.get("isolation")
        if not isinstance(iso, dict) or not iso:
            continue
        reported += 1
        for layer, state in iso.items():
            entry = layers.setdefault(str(layer), {"layer": str(layer), "active": 0, "not_available": 0,
                                                   "reasons": Counter()})
            state = str(state)
            if state == "active":
                entry["active"] += 1
            else:
                entry["not_available"] += 1
                why = state[len("not available:"):].strip() if state.startswith("not available:") else state
                entry["reasons"][why or "?"] += 1
    out = []
    for name in sorted(layers):
        e = layers[name]
        out.append(dict(e, reasons=[{"reason": t, "gradings": k} for t, k in e["reasons"].most_common()]))
    return {"gradings": len(records), "reported": reported, "layers": out}


def csv_table(view):
    """scores.csv as (header, rows)."""
    meta = view["meta"]
    functions = meta.get("functions") or []
    recs = {r["student"]: r for r in view["records"]}
    rows = []
    for key, r in recs.items():
        scores = {f["name"]: f["score"] for f in r["functions"]}
        rows.append({"student": key, "sid": r.get("sid"), "email": r.get("email"), "name": r.get("name"),
                     "total": fmt(r["score"]), "max": fmt(r["max_score"]),
                     **{name: fmt(scores.get(name)) for name in functions},
                     "instructor_tests": fmt(r["instructor"]["score"]) if r.get("instructor") else "",
                     "gradescope_score": fmt(r.get("gradescope_score")), "status": r["status"],
                     "note": r.get("failure") or ""})
    for b in view["bad"]:
        if b.get("duplicate_of") or b["key"] in recs:
            continue  # the student has a graded row
        rows.append({"student": b["key"], "sid": b.get("sid"), "email": b.get("email"), "name": b.get("name"),
                     "gradescope_score": fmt(b.get("gradescope_score")), "status": "bad input", "note": b["problem"]})
    for m in view["missing"]:
        if m["key"] not in recs:
            rows.append({"student": m["key"], "sid": m.get("sid"), "email": m.get("email"), "name": m.get("name"),
                         "gradescope_score": fmt(m.get("gradescope_score")), "status": "not graded yet",
                         "note": m.get("reason") or "no results yet: rerun grade-batch to finish"})
    header = ["student"] + [c for c in ("sid", "email", "name") if any(row.get(c) for row in rows)]
    header += ["total", "max"] + functions
    header += [c for c in ("instructor_tests", "gradescope_score") if any(row.get(c) for row in rows)]
    header += ["status", "note"]
    rows.sort(key=lambda row: row["student"])
    return header, [[row.get(c) or "" for c in header] for row in rows]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A text cell a spreadsheet cannot take for a formula: one that begins with =, +, -, @, a tab or a
    carriage return gets a single quote in front (OWASP's rule against CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_numeric(header, functions):
    """The columns of scores.csv that hold numbers the kit wrote (fmt), left as they are."""
    return [c in ("total", "max", "instructor_tests", "gradescope_score") or c in functions for c in header]


def histogram_png(totals, max_score, title):
    """PNG bytes of the histogram of total scores, or None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    top = max_score if max_score else (max(totals) if totals else 1.0)
    bins = int(min(40, max(10, round(top)))) if top > 0 else 10
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    edges = [top * i / bins for i in range(bins + 1)] if top > 0 else bins
    ax.hist(totals, bins=edges, color="#4477aa", edgecolor="white")
    if totals:
        mean = statistics.fmean(totals)
        ax.axvline(mean, color="#cc3311", linestyle="--", label="mean %s" % fmt(round(mean, 2)))
        ax.legend(loc="upper left")
    ax.set_xlim(0, top if top > 0 else 1)
    ax.set_xlabel("total score (out of %s)" % fmt(max_score) if max_score else "total score")
    ax.set_ylabel("students")
    ax.set_title(title)
    ax.yaxis.get_major_locator().set_params(integer=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _pct(rate):
    return "–" if rate is None else "%d%%" % round(100 * rate)


def markdown(s):
    """summary.md from summarize()'s dictionary."""
    meta, t = s["meta"], s["total"]
    lines = ["# Batch grading summary", ""]
    if s.get("incomplete"):
        lines += ["**Incomplete: these scores are not the whole class.**", ""]
        lines += ["- %s" % _md(x) for x in s["incomplete"]] + [""]
    where = meta.get("input") if isinstance(meta.get("input"), str) else ", ".join(meta.get("input") or [])
    shards = meta.get("shards") or []
    lines.append("Input: `%s`%s. Seed %s (%s), device %s, %d graded function%s%s." % (
        where, " (%s)" % meta["input_kind"] if meta.get("input_kind") else "", meta.get("seed"),
        meta.get("seed_from") or "", meta.get("device"), len(meta.get("functions") or []),
        "" if len(meta.get("functions") or []) == 1 else "s",
        " + instructor tests" if meta.get("instructor_tests") else ""))
    if shards:
        lines.append("Shard%s: %s." % ("" if len(shards) == 1 else "s", ", ".join("%d/%d" % tuple(x) for x in shards)))
    if meta.get("merged_from"):
        lines.append("Merged from: %s." % ", ".join("`%s`" % d for d in meta["merged_from"]))
    lines += ["", "Graded: **%d**; grader failures: %d; bad inputs: %d%s." % (
        s["graded"], len(s["grader_failed"]), len(s["bad_inputs"]),
        "; not graded yet: %d" % len(s["not_graded_yet"]) if s["not_graded_yet"] else ""), ""]
    lines += ["## Total scores", ""]
    if t.get("count"):
        lines += ["| count | mean | median | min | max | full marks |", "|---|---|---|---|---|---|",
                  "| %d | %s | %s | %s | %s | %d (%s) |" % (
                      t["count"], fmt(round(t["mean"], 2)), fmt(t["median"]), fmt(t["min"]), fmt(t["max"]),
                      t["full_marks"], _pct(_rate(t["full_marks"], t["count"]))),
                  "", "Out of %s." % fmt(t["max_score"]), ""]
        if s.get("histogram"):
            lines += ["![histogram of total scores](%s)" % s["histogram"], ""]
    else:
        lines += ["Nothing graded yet.", ""]
    if s["functions"]:
        lines += ["## Functions", "", "| function | points | mean | full marks |", "|---|---|---|---|"]
        for name, f in s["functions"].items():
            lines.append("| %s | %s | %s | %d of %d (%s) |" % (name, fmt(f["max_score"]), fmt(f["mean"]),
                                                            f["full_marks"], f["students"], _pct(f["pass_rate"])))
        lines.append("")
    if "instructor_tests" in s:
        it = s["instructor_tests"]
        lines += ["Instructor tests: mean %s of %s, full marks %d of %d." % (
            fmt(it["mean"]), fmt(it["max_score"]), it["full_marks"], it["students"]), ""]
        if it["failed"]:
            lines += ["- %d × %s" % (x["students"], x["test"]) for x in it["failed"][:TOP]] + [""]
    if s["functions"]:
        lines += ["## Pass rate per check", ""]
        for name, f in s["functions"].items():
            lines += ["### %s" % name, "", "| check | passed | rate |", "|---|---|---|"]
            for c in f["checks"]:
                lines.append("| %s%s | %d of %d | %s |" % (c["check"], " (hidden)" if c["hidden"] else "",
                                                         c["passed"], c["of"], _pct(c["rate"])))
            lines.append("")
        lines += ["## What the class got wrong", "",
                  "Per function, the students who got each hint, and each first failing check "
                  "(numbers shown as #).", ""]
        for name, f in s["functions"].items():
            if not f["hints"] and not f["first_failures"]:
                continue
            lines += ["### %s" % name, ""]
            if f["hints"]:
                lines += ["Hints:", ""] + ["- %d × %s" % (h["students"], h["text"][len("Hint: "):])
                                           for h in f["hints"][:TOP]] + [""]
            if f["first_failures"]:
                lines += ["First failures:", ""] + ["- %d × `%s`" % (x["students"], x["text"].replace("`", "'"))
                                                    for x in f["first_failures"][:TOP]] + [""]
    lines += isolation_markdown(s.get("isolation"))
    if s["bad_inputs"]:
        lines += ["## Bad inputs", "", "| student | submission | reason |", "|---|---|---|"]
        lines += ["| %s | `%s` | %s |" % (b["student"], _md(b["source"]), _md(b["reason"]))
                  for b in s["bad_inputs"]] + [""]
    if s["grader_failed"]:
        lines += ["## Grader failures", "",
                  "The grader itself failed on these (their results.json say so; the traceback is in its "
                  "hidden entry). grade-batch tries them again when rerun.", ""]
        lines += ["- %s (`%s`): %s" % (g["student"], _md(g["source"]), _md(g["reason"])) for g in s["grader_failed"]] + [""]
    if s["not_graded_yet"]:
        lines += ["## Not graded yet", ""] + ["- %s%s%s" % (m["student"], " (`%s`)" % _md(m["source"]) if m["source"] else "",
                                                         ": %s" % _md(m["reason"]) if m.get("reason") else "")
                                               for m in s["not_graded_yet"]] + [""]
    if s["identical"]:
        lines += ["## Identical submissions", "",
                  "Students whose .py files are byte for byte the same (each was graded):", ""]
        lines += ["- %s" % ", ".join(g) for g in s["identical"]] + [""]
    if s["notes"]:
        lines += ["## Notes", ""] + ["- %s" % _md(n) for n in s["notes"]] + [""]
    return "\n".join(lines)


def isolation_markdown(iso):
    """summary.md's "Isolation" section: each layer, and in how many gradings it was active."""
    if not iso or not iso.get("gradings"):
        return []
    lines = ["## Isolation", ""]
    n, layers = iso["gradings"], iso.get("layers") or []
    if not layers:
        return lines + ["No grading reported its isolation layers.", ""]
    lines += ["The layers student code ran under, per grading.", "",
              "| layer | active in | not available in |", "|---|---|---|"]
    for e in layers:
        why = "; ".join("%d × %s" % (r["gradings"], r["reason"]) for r in e["reasons"][:3])
        lines.append("| %s | %d of %d | %s |" % (
            e["layer"].replace("|", "/"), e["active"], n,
            "%d (%s)" % (e["not_available"], why.replace("|", "/")) if e["not_available"] else "0"))
    if iso.get("reported", n) < n:
        lines.append("")
        lines.append("%d of %d gradings reported no layers (no worker ran: nothing of theirs could be imported; "
                     "or graded before layers were recorded)." % (n - iso["reported"], n))
    return lines + [""]


def write(outdir, view):
    """Write scores.csv, summary.json, summary.md and histogram.png into outdir; returns their paths."""
    make_private_dir(outdir)
    s = summarize(view)
    header, rows = csv_table(view)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    numeric = csv_numeric(header, view["meta"].get("functions") or [])
    w.writerow([csv_cell(c) for c in header])
    w.writerows([c if number else csv_cell(c) for c, number in zip(row, numeric)] for row in rows)
    paths = [os.path.join(outdir, "scores.csv")]
    write_private(paths[0], buf.getvalue().encode("utf-8", "backslashreplace"))
    png_path = os.path.join(outdir, "histogram.png")
    totals = [r["score"] for r in view["records"] if r["status"] == "graded"]
    png = None
    if totals:
        png = histogram_png(totals, s["total"].get("max_score"), "%d students, median %s" % (
            len(totals), fmt(s["total"]["median"])))
        if png is None:
            s["notes"].append("histogram.png was not drawn: matplotlib is not installed (pip install matplotlib)")
    if png is not None:
        write_private(png_path, png)
        s["histogram"] = "histogram.png"
        paths.append(png_path)
    elif os.path.exists(png_path):
        os.unlink(png_path)
    write_json(s, os.path.join(outdir, "summary.json"))
    write_private(os.path.join(outdir, "summary.md"), markdown(s).encode("utf-8", "backslashreplace"))
    return paths[:1] + [os.path.join(outdir, "summary.md"), os.path.join(outdir, "summary.json")] + paths[1:]


# --------------------------------------------------------------------------- merge
def _students_now(inputs, notes):
    """The student keys of the shards' input folder as it is now (discovery.py, as grade-batch reads it),
    or none, with a note, where the folders name several inputs or it cannot be read any more."""
    from .discovery import BatchError, discover

    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return set()
    try:
        return {it.key for it in discover(inputs[0]).items}
    except (BatchError, OSError) as e:
        notes.append("the input %s could not be read again to look for students added since (%s)" % (inputs[0], e))
        return set()


ALIKE = {"seed": "seed", "fingerprint": "fingerprint (registry, grading code, course.toml, instructor tests)",
         "device": "device", "functions": "graded functions", "instructor_tests": "instructor tests"}


def merge(dirs, out):
    """Join the output folders of several grade-batch runs (shards) into `out`.

    Refuses (MergeError) folders graded with another seed, fingerprint, device or set of functions.
    Returns (written paths, notes, missing): notes on students in more than one folder (the first
    folder's results are kept) and the like; missing, what keeps the merge from being complete, each a
    line: every shard not among the folders, and every student not graded (not graded yet in their
    shard, in a shard not merged, or seen in the input by some shard after their own shard ran: every
    shard records all the input's students). Each missing student has a row ("not graded") in
    scores.csv, and the summary lists them first.
    """
    if not dirs:
        raise MergeError("nothing to merge: name the output folders of grade-batch")
    out_real = os.path.realpath(out)
    if any(os.path.realpath(d) == out_real for d in dirs) or os.path.exists(os.path.join(out, MANIFEST)):
        raise MergeError("the merged folder %s must not be one of the folders merged (nor any output folder of "
                         "grade-batch)" % out)
    mans = [read_manifest(d) for d in dirs]
    for m in mans:  # the merge re-reads the input for late students: its own folder there would be one
        if isinstance(m.get("input"), str) and inside(out_real, os.path.realpath(m["input"])):
            raise MergeError("the merged folder %s must not be inside the graded input %s" % (out, m["input"]))
    problems = []
    for key, label in ALIKE.items():
        if len({json.dumps(m.get(key), sort_keys=True) for m in mans}) > 1:
            values = "; ".join("%s: %s" % (d, m.get(key)) for d, m in zip(dirs, mans))
            problems.append("%s differ: %s" % (label, values))
    if problems:
        raise MergeError("these folders were not graded alike, so their scores cannot be merged:\n  "
                         + "\n  ".join(problems))
    from .discovery import shard_of

    notes, incomplete, n = [], [], None
    shards = [tuple(m["shard"]) if m.get("shard") else None for m in mans]
    absent = []
    if all(shards):
        counts = {n for _, n in shards}
        if len(counts) > 1:
            notes.append("the folders come from different shardings (%s)" % ", ".join("%d/%d" % s for s in shards))
        else:
            n = counts.pop()
            have = Counter(k for k, _ in shards)
            absent = [k for k in range(1, n + 1) if k not in have]
            if absent:
                incomplete.append("shard%s %s of %d %s not among the merged folders" % (
                    "" if len(absent) == 1 else "s", ", ".join(map(str, absent)), n,
                    "is" if len(absent) == 1 else "are"))
            twice = [k for k, c in have.items() if c > 1]
            if twice:
                notes.append("shard%s %s given more than once" % ("" if len(twice) == 1 else "s",
                                                                 ", ".join(map(str, sorted(twice)))))
    inputs = list(dict.fromkeys(m.get("input") for m in mans))
    if len(inputs) > 1:
        notes.append("the folders graded different inputs: %s" % ", ".join(map(str, inputs)))
    records, bad, missing, seen, overlap = [], {}, [], {}, []
    identical, extra_notes = set(), []
    for d, m in zip(dirs, mans):
        v = view_of(d, m)
        for rec in v["records"] + [dict(x, student=x["key"], _missing=True) for x in v["missing"]]:
            key = rec["student"]
            if key in seen:
                overlap.append("%s (%s and %s)" % (key, seen[key], d))
                continue
            seen[key] = d
            if rec.get("_missing"):
                missing.append({k: v for k, v in rec.items() if k not in ("_missing", "student")})
            else:
                records.append(rec)
        for b in v["bad"]:
            bad.setdefault(b["source"], b)
        identical.update(tuple(g) for g in v["identical"])
        extra_notes += [n for n in v["notes"] if n not in extra_notes]
    if overlap:
        notes.append("students in more than one folder (the first folder's results are kept): %s" % ", ".join(overlap))
    where = (lambda key: "shard %d/%d" % (shard_of(key, n), n)) if n else (lambda key: "its folder")
    for m in missing:
        m["reason"] = "not graded yet in %s: rerun it, then merge again" % where(m["key"])
    accounted = set(seen) | {b["key"] for b in bad.values()}
    known = {k for m in mans for k in (m.get("students") or [])}
    now = _students_now(inputs, notes)  # the input as it is now: a student added after every shard ran
    for key in sorted((known | now) - accounted):
        if n and shard_of(key, n) in absent:
            reason = "in shard %d/%d, which is not among the merged folders" % (shard_of(key, n), n)
        else:
            reason = ("added to the input after %s was graded: rerun it (it grades only what is missing), "
                      "then merge again" % where(key))
        missing.append({"key": key, "source": None, "reason": reason})
    if missing:
        incomplete.append("%d student%s not graded: %s" % (len(missing), "" if len(missing) == 1 else "s", "; ".join(
            "%s (%s)" % (m["key"], m["reason"]) for m in sorted(missing, key=lambda m: m["key"]))))
    meta = {k: mans[0].get(k) for k in ("seed", "seed_from", "device", "functions", "fingerprint",
                                        "instructor_tests", "input_kind", "all_submissions")}
    meta["input"] = inputs[0] if len(inputs) == 1 else inputs
    meta["shards"] = [list(s) for s in shards if s]
    meta["merged_from"] = [os.path.abspath(d) for d in dirs]
    view = {"meta": meta, "records": records, "bad": list(bad.values()), "missing": missing,
            "identical": sorted(list(g) for g in identical), "notes": extra_notes + notes, "incomplete": incomplete}
    open_mode = open_to_others(out) if os.path.isdir(out) else None
    paths = write(out, view)
    write_json(dict(meta, notes=notes, incomplete=incomplete), os.path.join(out, MERGED))
    if open_mode is not None:
        notes = notes + [folder_warning(out, open_mode)]
    return paths + [os.path.join(out, MERGED)], notes, incomplete
