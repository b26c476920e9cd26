"""Export the written answers of a notebook to a PDF for Gradescope, offline.

    python export_answers.py 01_rnn_gradients.ipynb [-o 01_rnn_gradients_answers.pdf] [--all]

The written questions of the notebooks are otter-grader manual questions: their cells sit between
`<!-- BEGIN QUESTION -->` and `<!-- END QUESTION -->` markers. Those cells (prompt and your answer,
code outputs and plots included) are turned into Markdown, then into a PDF by pandoc and Typst:
no browser, no LaTeX, nothing downloaded. `--all` exports the whole notebook instead.
Needs: pip install nbformat pypandoc_binary typst (all from PyPI, pandoc and Typst inside).
"""
import argparse
import base64
import os
import sys
import tempfile

BEGIN, END = "<!-- BEGIN QUESTION -->", "<!-- END QUESTION -->"


def written_cells(nb, everything=False):
    """The cells to export: those inside BEGIN/END QUESTION markers (all cells with everything)."""
    if everything:
        return list(nb.cells)
    out, inside = [], False
    for cell in nb.cells:
        text = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if BEGIN in text:
            inside = True
        if inside:
            out.append(cell)
        if END in text:
            inside = False
    return out


def to_markdown(cells, folder):
    """Markdown for the cells; images of code outputs are written into folder."""
    parts, count = [], 0
    for cell in cells:
        text = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        text = text.replace(BEGIN, "").replace(END, "").strip()
        if cell.cell_type == "markdown":
            parts.append(text)
        elif cell.cell_type == "code":
            if text:
                parts.append("```python\n%s\n```" % text)
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/png" in data:
                    count += 1
                    name = "figure-%d.png" % count
                    with open(os.path.join(folder, name), "wb") as f:
                        f.write(base64.b64decode(data["image/png"]))
                    parts.append("![](%s){width=90%%}" % name)
                elif "text/plain" in data or output.get("output_type") == "stream":
                    body = output.get("text") or data.get("text/plain", "")
                    body = body if isinstance(body, str) else "".join(body)
                    if body.strip():
                        parts.append("```\n%s\n```" % body.rstrip()[:5000])
    return "\n\n".join(p for p in parts if p)


def export(path, output=None, everything=False):
    """Write the PDF; return its path. Raises RuntimeError with a readable message on failure."""
    import nbformat
    import pypandoc
    import typst

    nb = nbformat.read(path, as_version=4)
    cells = written_cells(nb, everything)
    if not cells:
        raise RuntimeError("%s has no written questions (no %s markers): use --all to export everything"
                           % (path, BEGIN))
    output = output or os.path.splitext(path)[0] + "_answers.pdf"
    title = os.path.splitext(os.path.basename(path))[0].replace("_", " ")
    with tempfile.TemporaryDirectory() as folder:
        markdown = "# Written answers: %s\n\n%s\n" % (title, to_markdown(cells, folder))
        source = pypandoc.convert_text(markdown, "typst", format="markdown+tex_math_dollars",
                                       extra_args=["--standalone"])
        typ = os.path.join(folder, "answers.typ")
        with open(typ, "w", encoding="utf-8") as f:
            f.write(source)
        typst.compile(typ, output=os.path.abspath(output), root=folder)
    return output


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("notebook")
    p.add_argument("-o", "--output", help="the PDF to write (default: NOTEBOOK_answers.pdf)")
    p.add_argument("--all", action="store_true", help="export every cell, not only the written questions")
    args = p.parse_args(argv)
    try:
        out = export(args.notebook, args.output, args.all)
    except ImportError as e:
        print("export_answers needs nbformat, pypandoc_binary and typst: pip install nbformat pypandoc_binary "
              "typst (%s)" % e, file=sys.stderr)
        return 2
    except Exception as e:  # pandoc or Typst said no: show it plainly
        print("could not export %s: %s" % (args.notebook, e), file=sys.stderr)
        return 1
    print("wrote %s: upload it to the written part of the assignment on Gradescope" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
