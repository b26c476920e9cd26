"""Preview a Gradescope results.json as a student sees it on Gradescope, in one HTML page.

    python tools/preview_results.py results.json preview.html [--only rnn_forward ...]

A TA checks the feedback of a grading before release without uploading anything: the top-level
output, then each test as Gradescope lists it (sorted by "number", failed ones first marked), with its
name, score and status, and its output rendered by its output_format: "md" through pandoc's
GitHub-flavoured Markdown (the kit's own Markdown path: pypandoc_binary, as handouts/build.py), with
raw HTML shown as text, as Gradescope does with what a student's code wrote; "text" as preformatted
text; "html" and "simple_format" as text too (the kit writes neither). Only the fields that Gradescope
shows are shown: "visibility" "hidden" tests are left out, and "after_published" ones marked.

To see it as an image (the issue note's screenshot), open it in a browser, or headless:
    chromium --headless --no-sandbox --screenshot=preview.png --window-size=1100,2400 preview.html
"""
import argparse
import html
import json
import sys

import pypandoc

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 14px;
       margin: 24px auto; max-width: 1040px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px 0; } .total { font-size: 16px; color: #555; margin-bottom: 16px; }
.test { border: 1px solid #d6d6d6; border-radius: 4px; margin: 10px 0; }
.head { padding: 8px 12px; font-weight: 600; display: flex; justify-content: space-between; }
.failed .head { background: #fbe9e9; border-left: 5px solid #c62828; }
.passed .head { background: #e9f6ec; border-left: 5px solid #2e7d32; }
.body { padding: 4px 14px 10px 14px; } .body table { border-collapse: collapse; margin: 6px 0; }
.body th, .body td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
.body code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
.body pre { background: #f7f7f7; padding: 8px; overflow-x: auto; line-height: 1.4; }
.note { color: #777; font-weight: normal; font-size: 12px; }
"""


def render(text, fmt):
    """One output field as HTML: Markdown through pandoc (raw HTML left as text), anything else verbatim."""
    if fmt == "md":
        return pypandoc.convert_text(text, "html", format="gfm-raw_html", extra_args=["--wrap=none"])
    return "<pre>%s</pre>" % html.escape(text)


def _key(test):
    parts = []
    for piece in str(test.get("number", "")).split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return parts


def page(results, only=()):
    """The HTML page of a results.json's content (a dict). only: show just the tests whose names start with
    one of these (the total is still the whole grading's)."""
    every = results.get("tests", [])
    total = results.get("score", sum(float(t.get("score") or 0) for t in every))
    best = sum(float(t.get("max_score") or 0) for t in every)
    tests = sorted((t for t in every if t.get("visibility") != "hidden"
                    and (not only or str(t.get("name", "")).startswith(tuple(only)))), key=_key)
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Autograder Results</title>",
           "<style>%s</style></head><body>" % STYLE,
           "<h1>Autograder Results</h1><div class='total'>%s / %s</div>" % (_num(total), _num(best))]
    if results.get("output"):
        out.append("<div class='test'><div class='body'>%s</div></div>"
                   % render(results["output"], results.get("output_format", "text")))
    for t in tests:
        status = t.get("status") or ("passed" if float(t.get("score") or 0) >= float(t.get("max_score") or 0)
                                     else "failed")
        note = " <span class='note'>(shown after grades are published)</span>" \
            if t.get("visibility") == "after_published" else ""
        score = "%s / %s" % (_num(t.get("score", 0)), _num(t.get("max_score", 0))) if "max_score" in t else ""
        out.append("<div class='test %s'><div class='head'><span>%s%s%s</span><span>%s</span></div>"
                   % ("failed" if status == "failed" else "passed",
                      html.escape(str(t.get("number", "")) + " ") if t.get("number") else "",
                      html.escape(str(t.get("name", ""))), note, score))
        if t.get("output"):
            out.append("<div class='body'>%s</div>" % render(str(t["output"]), t.get("output_format", "text")))
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out)


def _num(x):
    x = float(x or 0)
    return ("%.2f" % x).rstrip("0").rstrip(".")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="a results.json (Gradescope's format)")
    parser.add_argument("html", help="where to write the page")
    parser.add_argument("--only", nargs="*", default=(), metavar="NAME",
                        help="show only the tests whose names start with one of these (e.g. rnn_forward)")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        results = json.load(f)
    with open(args.html, "w") as f:
        f.write(page(results, args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
