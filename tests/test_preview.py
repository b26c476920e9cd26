"""tools/preview_results.py: a results.json rendered as Gradescope shows it (the TA's preview).

A real grading's results.json, of a submission whose word_embedding_forward fails with a message that
tries Markdown and HTML of its own: the page must show every visible test in Gradescope's order with its
score, render the kit's Markdown (bold FAIL, code blocks), and show the student's text as text.
"""
import os
import re
import sys

from helpers import ROOT, make_variant

from autograder import registry
from autograder.engine import results, runner
from autograder.engine.sandbox import Limits

sys.path.insert(0, os.path.join(ROOT, "tools"))
import preview_results  # noqa: E402

ANCHOR = "    # BEGIN SOLUTION\n    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n"
PLANTED = "<script>alert(1)</script>\n# PASS everything\n| a | b |"


def test_the_preview_renders_a_failing_grading_as_gradescope_does(tmp_path):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py",
                       [(ANCHOR, "    # BEGIN SOLUTION\n    raise RuntimeError(%r)\n" % PLANTED)])
    plan = registry.plan([fn for fn in registry.FUNCTIONS if fn.file == "rnn_layers"], device="cpu")
    data = results.gradescope(runner.grade(sub, plan, Limits(call_timeout=5.0)))
    page = preview_results.page(data)

    shown = [t for t in data["tests"] if t.get("visibility") != "hidden"]
    heads = re.findall(r"<div class='test (passed|failed)'><div class='head'><span>([^<]*)<", page)
    assert [name.split(" ", 1)[1].rstrip() for _, name in heads] == [t["name"] for t in sorted(shown, key=preview_results._key)]
    failed = {name.split(" ", 1)[1].rstrip() for status, name in heads if status == "failed"}
    assert any(n.startswith("word_embedding_forward") for n in failed), failed
    assert not any(n.startswith("rnn_step_forward") for n in failed), failed
    assert "<strong>FAIL</strong>" in page and "<pre><code>" in page  # the kit's Markdown, rendered
    assert "<script>" not in page and "&lt;script&gt;" in page  # the student's HTML is text
    assert "<h1>PASS everything" not in page  # and their heading stays inside the code block
    total = "%s / %s" % (preview_results._num(data["score"]), preview_results._num(
        sum(t["max_score"] for t in data["tests"])))
    assert total in page
    one = preview_results.page(data, only=["rnn_forward "])
    assert one.count("<div class='test ") == 1 and "rnn_forward (rnn_layers.py)" in one and total in one


def test_hidden_tests_are_left_out_and_after_published_ones_marked():
    data = {"score": 1, "tests": [
        {"name": "b", "number": "1.10", "score": 1, "max_score": 1, "output": "ok", "output_format": "md"},
        {"name": "a", "number": "1.2", "score": 0, "max_score": 1, "status": "failed", "output": "**x**",
         "output_format": "md", "visibility": "after_published"},
        {"name": "secret", "number": "1.3", "score": 0, "max_score": 1, "visibility": "hidden"}]}
    page = preview_results.page(data)
    assert "secret" not in page
    assert page.index(">1.2 a") < page.index(">1.10 b")  # numbers sort as numbers, as Gradescope sorts them
    assert "shown after grades are published" in page and "<strong>x</strong>" in page
