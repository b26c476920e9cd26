"""results.py: a Report as Gradescope's results.json, and as the terminal table and details.

Covers the schema (tests/gradescope_schema.py) on reports of every shape: all passing, failing,
hidden failures, forbidden APIs, instructor review lines, isolation layers, notes, printed output,
unicode and control characters; the scores (each entry's score from its checks' weights, computed
here by hand, and the top-level total); what a hidden check reveals before and after publication;
the per-entry clipping of long messages, and the total size of results.json; function_output's
grouping of checks that failed for the same reason; table's widths and truncation; details.
"""
import json
import os
import stat

import gradescope_schema
import pytest

from autograder.engine import results
from autograder.engine.outcome import CheckResult, FunctionResult, Report

LABEL = "float64, small (float64, cpu, N=2 T=3)"


def chk(passed, message="", name=LABEL, hidden=False, weight=1.0, value_mismatch=None):
    return CheckResult(name=name, hidden=hidden, weight=weight, passed=passed, message=message,
                       value_mismatch=value_mismatch)


def report(*functions, **fields):
    base = dict(seconds=1.25, plan_seed=7, device="cpu", skipped_cuda=False)
    base.update(fields)
    return Report(functions=list(functions), **base)


@pytest.fixture
def fr(make_fn):
    """fr(checks, name=..., points=..., **fields) -> a FunctionResult of a fresh GradedFunction."""

    def make(checks, name="rnn_step_forward", file="rnn_layers", points=2.0, **fields):
        return FunctionResult(fn=make_fn(name=name, file=file, points=points), checks=list(checks), **fields)

    return make


@pytest.fixture
def mixed(fr):
    """A report with one of everything."""
    return report(
        fr([chk(True), chk(True, name="float32, small (float32, cpu)")], name="passes", points=1.0),
        fr([chk(True), chk(False, "h is wrong: largest relative error 1.00e+00", name="float32, small (x)",
                            value_mismatch=True)], name="public_fail", points=2.0),
        fr([chk(True), chk(False, "SECRET hidden message", name="float64, medium (y)", hidden=True)],
           name="hidden_fail", points=3.0),
        fr([chk(True)], name="forbidden", points=1.5, forbidden=["torch.nn.LSTM"],
           static=["rnn_layers.py line 4 names torch.nn.LSTM, which this assignment does not allow"]),
        notes=["static check: rnn_layers.py line 9 names autograd (.backward), which ..."],
        review=["rnn_layers.py line 12: an import of gc"],
        isolation={"seccomp": "active", "landlock": "not available: kernel 5.4"},
        student_output="printed by the student\n", skipped_cuda=True,
    )


def by_name(doc):
    return {t["name"]: t for t in doc["tests"]}


# --------------------------------------------------------------------------- schema
def test_a_report_of_every_kind_of_result_is_valid_results_json(mixed):
    doc = results.gradescope(mixed)
    assert gradescope_schema.problems(doc) == []


def test_an_empty_report_is_valid_results_json():
    doc = results.gradescope(report())
    assert gradescope_schema.problems(doc) == [] and doc["score"] == 0 and doc["tests"] == []


def test_written_results_json_is_strict_json_the_validator_accepts(mixed, tmp_path):
    path = str(tmp_path / "out" / "results.json")
    results.write_json(results.gradescope(mixed), path)
    doc = gradescope_schema.check_file(path)
    assert doc == json.loads(json.dumps(results.gradescope(mixed)))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(os.path.dirname(path)) == ["results.json"]  # no temporary file left behind


def test_write_json_applies_the_mode_asked_for(tmp_path):
    path = str(tmp_path / "results.json")
    results.write_json({"score": 0}, path, mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_unicode_and_control_characters_in_messages_survive_the_round_trip(fr, tmp_path):
    message = "h est faux: é, 日本語, \U0001F600, NUL \x00, ESC \x1b[31m red, quote \" and backslash \\"
    doc = results.gradescope(report(fr([chk(False, message)])))
    path = str(tmp_path / "results.json")
    results.write_json(doc, path)
    assert message in gradescope_schema.check_file(path)["tests"][0]["output"]


# --------------------------------------------------------------------------- scores
def test_each_entry_scores_its_points_times_the_weight_of_the_passed_checks(fr):
    weights, passed, points = [1.0, 2.0, 0.5, 1.5], [True, False, True, False], 3.0
    checks = [chk(p, "" if p else "wrong", name="case %d (x)" % i, weight=w)
              for i, (w, p) in enumerate(zip(weights, passed))]
    doc = results.gradescope(report(fr(checks, points=points)))
    entry = doc["tests"][0]
    got_weight = sum(w for w, p in zip(weights, passed) if p)
    assert entry["score"] == pytest.approx(points * got_weight / sum(weights))
    assert entry["max_score"] == points


def test_a_function_that_used_a_forbidden_api_scores_zero_whatever_passed(fr):
    doc = results.gradescope(report(fr([chk(True), chk(True)], forbidden=["F.cross_entropy"])))
    assert doc["tests"][0]["score"] == 0


def test_the_total_is_the_sum_of_the_entries_even_with_thirds(fr):
    functions = [fr([chk(True), chk(False, "x"), chk(False, "y")], name="f%d" % i, points=1.0) for i in range(7)]
    doc = results.gradescope(report(*functions))
    assert gradescope_schema.problems(doc) == []
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]), abs=1e-9)
    assert doc["score"] == pytest.approx(7 / 3, abs=1e-3)


def test_entries_are_named_after_the_function_and_its_file(fr):
    entry = results.gradescope(report(fr([chk(True)], name="lstm_forward", file="lstm_layers")))["tests"][0]
    assert entry["name"] == "lstm_forward (lstm_layers.py)"
    assert entry["tags"][:2] == ["lstm_forward", "lstm_layers"]


# --------------------------------------------------------------------------- hidden checks
def test_a_hidden_failure_shows_pass_fail_only_in_the_visible_entry(mixed):
    visible = by_name(results.gradescope(mixed))["hidden_fail (rnn_layers.py)"]
    assert "SECRET" not in visible["output"]
    assert "**FAIL** `float64, medium (y) [hidden]`: details are shown after grades are published" in visible["output"]
    assert visible["output_format"] == "md" and visible["status"] == "failed"
    # the plain text of the same entry (the terminal, the public checker)
    plain = results.function_output(mixed.functions[[f.fn.name for f in mixed.functions].index("hidden_fail")],
                                    show_hidden=False)
    assert "FAIL  float64, medium (y) [hidden] (details are shown after grades are published)" in plain


def test_a_hidden_failure_is_explained_in_a_zero_point_entry_of_the_chosen_visibility(mixed):
    doc = results.gradescope(mixed, hidden_details="after_due_date")
    details = by_name(doc)["hidden_fail (rnn_layers.py): hidden checks, details"]
    assert details["score"] == 0 and details["max_score"] == 0
    assert details["visibility"] == "after_due_date"
    assert "hidden-details" in details["tags"]
    assert "**FAIL** `float64, medium (y)`\n\n    SECRET hidden message" in details["output"]


def test_no_details_entry_without_a_failed_hidden_check(fr):
    doc = results.gradescope(report(fr([chk(True, hidden=True), chk(False, "public", name="p (x)")])))
    assert [t["name"] for t in doc["tests"]] == ["rnn_step_forward (rnn_layers.py)"]


def test_hidden_messages_never_reach_a_visible_field(mixed):
    doc = results.gradescope(mixed)
    visible = [doc["output"]] + [t["output"] for t in doc["tests"] if t.get("visibility") == "visible"]
    assert not any("SECRET" in text for text in visible)


def test_the_visibility_map_applies_to_its_function_only(mixed):
    entries = by_name(results.gradescope(mixed, visibility={"passes": "after_published"}))
    assert entries["passes (rnn_layers.py)"]["visibility"] == "after_published"
    assert entries["public_fail (rnn_layers.py)"]["visibility"] == "visible"


# --------------------------------------------------------------------------- instructor-only entries
def test_review_lines_go_to_a_hidden_entry(mixed):
    review = [t for t in results.gradescope(mixed)["tests"] if "static-review" in t["tags"]]
    assert len(review) == 1
    assert review[0]["visibility"] == "hidden" and review[0]["score"] == 0
    assert "rnn_layers.py line 12: an import of gc" in review[0]["output"]


def test_no_review_or_isolation_entry_when_there_is_nothing_to_say(fr):
    tags = [tag for t in results.gradescope(report(fr([chk(True)])))["tests"] for tag in t["tags"]]
    assert "static-review" not in tags and "sandbox" not in tags


def test_the_isolation_entry_is_hidden_and_lists_the_weak_layers(mixed):
    entry = [t for t in results.gradescope(mixed)["tests"] if "sandbox" in t["tags"]][0]
    assert entry["visibility"] == "hidden"
    assert entry["output"].startswith("Not active here: landlock.")
    assert "seccomp: active" in entry["output"] and "landlock: not available: kernel 5.4" in entry["output"]


def test_the_isolation_entry_says_so_when_every_layer_was_active():
    entry = results.isolation_entry({"seccomp": "active", "landlock": "active"})
    assert entry["output"].startswith("Every isolation layer was active.")
    assert gradescope_schema.problems({"tests": [entry]}) == []


# --------------------------------------------------------------------------- the summary
def test_the_summary_gives_the_score_notes_cuda_and_printed_output(mixed):
    out = results.gradescope(mixed)["output"]
    assert out.startswith("Score %s / %s." % (results.fmt_points(mixed.score), results.fmt_points(mixed.max_score)))
    assert "CUDA checks were not run" in out
    assert mixed.notes[0] in out
    assert "What your code printed (first part):\nprinted by the student" in out


def test_the_summary_keeps_only_the_first_part_of_what_the_student_printed(fr):
    printed = "".join("line %06d\n" % i for i in range(10000))
    out = results.gradescope(report(fr([chk(True)]), student_output=printed))["output"]
    assert printed[:1000] in out and printed[-1000:] not in out
    assert len(out) < 4000 + 500


@pytest.mark.parametrize("x", [0.0, 1.0, 2.5, 0.25, 10.0, 12.75, 100.0])
def test_points_are_printed_without_trailing_zeros(x):
    assert results.fmt_points(x) == "%g" % x


# --------------------------------------------------------------------------- clipping and size
def test_a_huge_message_is_clipped_in_its_entry(fr):
    doc = results.gradescope(report(fr([chk(False, "x" * 100_000)])))
    out = doc["tests"][0]["output"]
    assert len(out) <= results.MAX_OUTPUT_CHARS + len("\n[... truncated]")
    assert out.endswith("[... truncated]")


def test_huge_hidden_messages_are_clipped_in_their_details_entry(fr):
    checks = [chk(False, "%d " % i + "y" * 5000, name="h%d (x)" % i, hidden=True) for i in range(10)]
    details = results.gradescope(report(fr(checks)))["tests"][1]
    assert len(details["output"]) <= results.MAX_OUTPUT_CHARS + len("\n[... truncated]")


def test_a_short_output_is_not_marked_truncated():
    assert results.clip("abc") == "abc"
    assert results.clip("a" * results.MAX_OUTPUT_CHARS) == "a" * results.MAX_OUTPUT_CHARS


FUNCTIONS_IN_THE_ASSIGNMENT = 25  # about as many as autograder/parts declares


def test_results_json_stays_under_1_mb_whatever_the_messages_hold(fr):
    def flood(i):  # distinct messages: not grouped into one
        return "%d " % i + "\U0001F600" * 1500

    functions = [fr([chk(False, flood(j), name="c%d (x)" % j, hidden=j % 2 == 0) for j in range(12)],
                    name="f%d" % i) for i in range(FUNCTIONS_IN_THE_ASSIGNMENT)]
    doc = results.gradescope(report(*functions), hidden_details="after_published")
    assert len(json.dumps(doc, indent=1).encode()) < gradescope_schema.MAX_BYTES


def test_results_json_stays_under_1_mb_whatever_the_notes(fr):
    notes = ["static check: rnn_layers.py line %d names autograd (.backward), which this assignment does not allow"
             % line for line in range(1, 80_001)]
    doc = results.gradescope(report(fr([chk(True)]), notes=notes))
    assert len(json.dumps(doc, indent=1).encode()) < gradescope_schema.MAX_BYTES


# --------------------------------------------------------------------------- function_output
def test_passing_checks_are_listed_as_pass(fr):
    assert results.function_output(fr([chk(True)]), show_hidden=False) == "PASS  %s" % LABEL


def test_checks_failing_for_the_same_reason_are_reported_once(fr):
    checks = [chk(False, "same", name="float64, small (a)"), chk(True, name="ok (b)"),
              chk(False, "same", name="float32, small (c)"), chk(False, "other", name="medium (d)")]
    out = results.function_output(fr(checks), show_hidden=False)
    assert out.split("\n") == [
        "FAIL  float64, small (a) [and, for the same reason: float32, small]",
        "      same",
        "PASS  ok (b)",
        "FAIL  medium (d)",
        "      other",
    ]


def test_a_multi_line_message_is_indented_under_its_check(fr):
    out = results.function_output(fr([chk(False, "first\nTraceback\n  line 3")]), show_hidden=False)
    assert out == "FAIL  %s\n      first\n      Traceback\n        line 3" % LABEL


def test_show_hidden_reveals_a_hidden_failure_with_its_label(fr):
    out = results.function_output(fr([chk(False, "the why", hidden=True)]), show_hidden=True)
    assert out == "FAIL  %s [hidden]\n      the why" % LABEL


def test_a_forbidden_api_and_static_lines_come_first(fr):
    out = results.function_output(fr([chk(True)], forbidden=["torch.nn.LSTM"], static=["line 4 names X"]),
                                  show_hidden=False)
    lines = out.split("\n")
    assert "uses torch.nn.LSTM" in lines[0] and "0 points" in lines[0]
    assert lines[1] == "Static check: line 4 names X"
    assert lines[2] == "PASS  %s" % LABEL


# --------------------------------------------------------------------------- table and details
def test_the_table_has_a_row_per_function_and_a_total(mixed):
    rows = results.table(mixed).split("\n")
    for fr_ in mixed.functions:
        assert any(r.startswith(fr_.fn.name + " ") for r in rows), fr_.fn.name
    total = [r for r in rows if r.startswith("total")][0]
    assert "%s/%s" % (results.fmt_points(mixed.score), results.fmt_points(mixed.max_score)) in total.replace(" ", "")
    assert "CUDA checks skipped" in total
    assert "note: " + mixed.notes[0] in rows


def test_a_passing_function_reads_all_checks_passed(mixed):
    row = [r for r in results.table(mixed).split("\n") if r.startswith("passes ")][0]
    assert row.endswith("all checks passed")


def test_a_long_first_failure_is_cut_to_the_width(fr):
    rep = report(fr([chk(False, "z" * 1000)]))
    for width in (60, 100, 140):
        rows = results.table(rep, width=width).split("\n")
        assert all(len(r) <= width for r in rows[:-1]), (width, [len(r) for r in rows])
        assert [r for r in rows if r.startswith("rnn_step_forward")][0].endswith("...")


def test_the_table_hides_hidden_messages_when_asked(mixed):
    assert "SECRET" in results.table(mixed, show_hidden=True)
    assert "SECRET" not in results.table(mixed, show_hidden=False)


def test_the_table_of_an_empty_report_does_not_raise():
    assert "total" in results.table(report())


def test_details_cover_the_failing_functions_only(mixed):
    text = results.details(mixed)
    assert "== public_fail (1/2)" in text and "== hidden_fail (1.5/3)" in text and "== forbidden (0/1.5)" in text
    assert "== passes" not in text
    assert "SECRET hidden message" in text
    assert "SECRET" not in results.details(mixed, show_hidden=False)


def test_details_of_a_perfect_report_are_empty(fr):
    assert results.details(report(fr([chk(True)]))) == ""


def test_each_label_of_a_group_stays_one_item(fr):
    """Labels hold commas ("float32, small"): the group's labels are separated by semicolons, not commas."""
    checks = [chk(False, "same", name="float64, small (a)"), chk(False, "same", name="float32, small (b)"),
              chk(False, "same", name="float32, large pre-activations (c)")]
    first = results.function_output(fr(checks), show_hidden=False).split("\n")[0]
    assert first == "FAIL  float64, small (a) [and, for the same reason: float32, small; float32, large pre-activations]"


def test_a_check_not_credited_is_not_shown_as_a_failure(fr):
    from autograder.engine.results import NOT_CREDITED

    out = results.function_output(fr([chk(False, "wrong"), chk(False, NOT_CREDITED, name="inputs left unchanged")]),
                                  show_hidden=False)
    assert "NOT CREDITED  inputs left unchanged (counts once another check of this function passes)" in out
    assert "FAIL  inputs left unchanged" not in out


def test_gradescope_entries_are_markdown_numbered_in_handout_order_with_a_status(fr):
    a = fr([chk(True)], name="rnn_step_forward", file="rnn_layers")
    b = fr([chk(False, "h is wrong: *not* `code`\n# not a heading", name="float64, small (x)")], name="rnn_forward",
           file="rnn_layers")
    c = fr([chk(True)], name="lstm_forward", file="lstm_layers")
    doc = results.gradescope(report(a, b, c))
    gradescope_schema.check(doc)
    entries = doc["tests"]
    assert [t["number"] for t in entries] == ["1.1", "1.2", "2.1"]
    assert [t["status"] for t in entries] == ["passed", "failed", "passed"]
    assert all(t["output_format"] == "md" for t in entries)
    assert entries[0]["output"].startswith("**Every check passed (1).**")
    out = entries[1]["output"]
    assert out.startswith("**1 of 1 checks failed.** ")
    # the student's words sit in an indented code block: no Markdown of theirs is rendered
    assert "\n\n    h is wrong: *not* `code`\n    # not a heading" in out


@pytest.mark.parametrize("brk", ["\r", "\u2028", "\x0b", "\x1c", "\r\n"])
def test_a_students_line_break_cannot_leave_the_indented_block(fr, brk):
    """A message of the student's holding a line break that is not "\\n" (a carriage return, U+2028, ...):
    before, the text after it started a line of its own, unindented (on a terminal a FAIL could be
    overwritten to read PASS; in Gradescope's Markdown, a heading or raw HTML)."""
    evil = "wrong" + brk + "PASS  everything" + brk + "# Heading <img src=x>"
    check = chk(False, evil)
    plain = results.function_output(fr([check]), show_hidden=False)
    md = results.function_output(fr([check]), show_hidden=False, markdown=True)
    assert "\n      PASS  everything\n      # Heading" in plain
    assert "\n    PASS  everything\n    # Heading <img src=x>" in md
    for text in (plain, md):
        lines = text.splitlines()
        assert not any(line.startswith(("PASS  everything", "# Heading")) for line in lines), text
    table = results.table(report(fr([check])))
    assert all(not line.startswith("PASS  everything") for line in table.splitlines())
