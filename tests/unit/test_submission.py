"""submission.py: finding, vetting and copying the student's files, without running any of them.

Covers vet() on every kind of broken file a student uploads (missing, empty, a folder, a link, too
large, not UTF-8, NUL bytes, syntax errors) and on valid files that look unusual (unicode, CRLF,
a UTF-8 byte-order mark); locate() on the layouts Gradescope hands over (files at the top, inside
one folder as an unzipped archive leaves them, too deep, beside __MACOSX junk); importable_modules
and shadowing (a json.py or torch.py beside the graded file is refused, the student's own helpers
are not); make_scratch (what is copied, and what never is).
"""
import os
import shutil
import stat

import pytest

from autograder.engine import submission
from autograder.engine.submission import FileStatus

GOOD = "import torch\n\n\ndef rnn_step_forward(x, h):\n    return torch.tanh(x + h)\n"


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- vet
def test_a_valid_file_passes_vetting(tmp_path):
    assert submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", GOOD)) is None


def test_unicode_identifiers_comments_and_crlf_line_ends_pass(tmp_path):
    text = "# résumé: ñ, 日本語, emoji \U0001F600\r\ndef größe(x):\r\n    return x  # ok\r\n"
    assert submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", text)) is None


def test_a_utf8_file_with_a_byte_order_mark_passes_vetting(tmp_path):
    path = write(tmp_path / "rnn_layers.py", b"\xef\xbb\xbf" + GOOD.encode())
    assert submission.vet("rnn_layers", path) is None


def test_a_missing_file_could_not_be_read(tmp_path):
    msg = submission.vet("rnn_layers", str(tmp_path / "rnn_layers.py"))
    assert msg.startswith("rnn_layers.py could not be read: ") and "No such file" in msg


def test_an_empty_file_is_reported_as_empty(tmp_path):
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", b""))
    assert msg == "rnn_layers.py is empty: upload the file with your code in it"


def test_a_folder_named_like_the_file_is_not_a_regular_file(tmp_path):
    (tmp_path / "rnn_layers.py").mkdir()
    msg = submission.vet("rnn_layers", str(tmp_path / "rnn_layers.py"))
    assert msg == "rnn_layers.py is not a regular file (a link or a folder?)"


def test_a_symlink_is_never_followed(tmp_path):
    target = write(tmp_path / "elsewhere.py", GOOD)
    os.symlink(target, tmp_path / "rnn_layers.py")
    msg = submission.vet("rnn_layers", str(tmp_path / "rnn_layers.py"))
    assert msg == "rnn_layers.py is not a regular file (a link or a folder?)"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    size = submission.MAX_FILE_BYTES + 1
    path = write(tmp_path / "rnn_layers.py", b"#" * size)
    msg = submission.vet("rnn_layers", path)
    assert msg == "rnn_layers.py is %d bytes, over the %d-byte limit" % (size, submission.MAX_FILE_BYTES)


def test_a_file_at_the_size_limit_is_accepted(tmp_path):
    path = write(tmp_path / "rnn_layers.py", b"#" * (submission.MAX_FILE_BYTES - 1) + b"\n")
    assert submission.vet("rnn_layers", path) is None


def test_a_non_utf8_file_names_the_first_bad_byte_and_its_offset(tmp_path):
    prefix = "x = 1\n# caf".encode()
    path = write(tmp_path / "rnn_layers.py", prefix + "é\n".encode("latin-1"))
    msg = submission.vet("rnn_layers", path)
    assert msg.startswith("rnn_layers.py is not UTF-8 text (byte 0x%02x at offset %d)"
                          % ("é".encode("latin-1")[0], len(prefix)))
    assert "not a notebook, zip or PDF" in msg


@pytest.mark.parametrize("magic", [b"PK\x03\x04\x80\x00", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"], ids=["zip", "pdf"])
def test_a_zip_or_pdf_uploaded_as_the_py_file_is_not_utf8(tmp_path, magic):
    first_non_ascii = next(i for i, b in enumerate(magic) if b >= 0x80)  # here it starts no valid sequence
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", magic))
    assert msg.startswith("rnn_layers.py is not UTF-8 text (byte 0x%02x at offset %d)"
                          % (magic[first_non_ascii], first_non_ascii))


def test_nul_bytes_are_not_python_source(tmp_path):
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", b"x = 1\n\x00\x00\n"))
    assert msg == "rnn_layers.py contains NUL bytes: it is not Python source"


def test_a_notebook_saved_as_py_parses_and_is_left_to_the_import(tmp_path):
    notebook = '{\n "cells": [\n  {\n   "cell_type": "code",\n   "source": [\n    "import torch"\n   ]\n  }\n ]\n}\n'
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", notebook))
    # valid JSON is a valid Python expression: this one parses, and the worker's import will judge it
    assert msg is None


def test_a_syntax_error_names_the_line_and_shows_it(tmp_path):
    lines = GOOD.splitlines() + ["def broken(x:", "    return x"]
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", "\n".join(lines) + "\n"))
    bad = lines.index("def broken(x:") + 1
    assert msg.startswith("rnn_layers.py has a syntax error at line %d: " % bad)
    assert msg.endswith("\n    def broken(x:")


def test_an_indentation_error_is_a_syntax_error_too(tmp_path):
    msg = submission.vet("rnn_layers", write(tmp_path / "rnn_layers.py", "def f(x):\nreturn x\n"))
    assert msg.startswith("rnn_layers.py has a syntax error at line 2: ")


def test_a_pathologically_nested_file_is_an_error_message_not_an_exception(tmp_path):
    path = write(tmp_path / "rnn_layers.py", "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n")
    msg = submission.vet("rnn_layers", path)
    assert isinstance(msg, str) and msg.startswith("rnn_layers.py ")


# --------------------------------------------------------------------------- locate
def test_files_at_the_top_of_the_submission_are_found(tmp_path):
    path = write(tmp_path / "rnn_layers.py", GOOD)
    assert submission.locate(str(tmp_path), ["rnn_layers"]) == {"rnn_layers": FileStatus("rnn_layers", path, None)}


def test_files_one_folder_down_are_found_as_an_unzipped_archive_leaves_them(tmp_path):
    path = write(tmp_path / "hw3" / "rnn_layers.py", GOOD)
    got = submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"]
    assert got.path == path and got.error is None


def test_files_two_folders_down_are_not_found(tmp_path):
    write(tmp_path / "hw3" / "code" / "rnn_layers.py", GOOD)
    got = submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"]
    assert got.path is None
    assert got.error == ("rnn_layers.py was not found in the submission (looked in the top folder and one "
                         "folder below it)")


def test_a_file_at_the_top_wins_over_one_in_a_subfolder(tmp_path):
    top = write(tmp_path / "rnn_layers.py", GOOD)
    write(tmp_path / "old" / "rnn_layers.py", GOOD)
    assert submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"].path == top


def test_among_subfolders_the_first_in_sorted_order_wins(tmp_path):
    write(tmp_path / "b_final" / "rnn_layers.py", GOOD)
    first = write(tmp_path / "a_draft" / "rnn_layers.py", GOOD)
    assert submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"].path == first


@pytest.mark.parametrize("junk", ["__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"])
def test_archive_junk_and_hidden_folders_are_never_searched(tmp_path, junk):
    write(tmp_path / junk / "rnn_layers.py", GOOD)
    assert submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"].path is None


def test_a_symlinked_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    write(outside / "rnn_layers.py", GOOD)
    root = tmp_path / "submission"
    root.mkdir()
    os.symlink(outside, root / "linked")
    assert submission.locate(str(root), ["rnn_layers"])["rnn_layers"].path is None


def test_each_module_is_located_and_vetted_on_its_own(tmp_path):
    write(tmp_path / "rnn_layers.py", GOOD)
    write(tmp_path / "sub" / "lstm_layers.py", b"")
    got = submission.locate(str(tmp_path), ["rnn_layers", "lstm_layers", "attention"])
    assert got["rnn_layers"].error is None
    assert got["lstm_layers"].path == str(tmp_path / "sub" / "lstm_layers.py")
    assert got["lstm_layers"].error == "lstm_layers.py is empty: upload the file with your code in it"
    assert got["attention"].path is None and "was not found" in got["attention"].error


def test_a_broken_symlink_named_like_the_file_is_found_and_refused(tmp_path):
    os.symlink(tmp_path / "nowhere.py", tmp_path / "rnn_layers.py")
    got = submission.locate(str(tmp_path), ["rnn_layers"])["rnn_layers"]
    assert got.path == str(tmp_path / "rnn_layers.py") and "not a regular file" in got.error


def test_a_submission_folder_that_does_not_exist_fails_every_module(tmp_path):
    root = str(tmp_path / "nope")
    got = submission.locate(root, ["rnn_layers", "lstm_layers"])
    assert set(got) == {"rnn_layers", "lstm_layers"}
    for module, st in got.items():
        assert st == FileStatus(module, None, "the submission folder %s does not exist" % root)


# --------------------------------------------------------------------------- importable_modules
def test_the_standard_library_installed_packages_and_the_kit_are_importable():
    known = submission.importable_modules()
    assert known["json"] == known["os"] == known["math"] == "standard library"
    assert known["torch"] == "installed package"
    assert known["autograder"] == "the grader's own code"


def test_folders_this_process_added_to_sys_path_do_not_count():
    """The worker runs `python -I`: the tests' own folder (helpers.py, on this sys.path) is not its."""
    tests_folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert os.path.exists(os.path.join(tests_folder, "helpers.py"))
    assert "helpers" not in submission.importable_modules()
    assert "gradescope_schema" not in submission.importable_modules()


def test_importable_modules_is_computed_once():
    assert submission.importable_modules() is submission.importable_modules()


# --------------------------------------------------------------------------- shadowing
@pytest.fixture
def beside(tmp_path):
    """beside(*names): a submission folder with rnn_layers.py and the named files next to it."""

    def make(*names):
        write(tmp_path / "rnn_layers.py", GOOD)
        for name in names:
            write(tmp_path / name, "x = 1\n")
        return submission.locate(str(tmp_path), ["rnn_layers"])

    return make


def test_a_file_named_like_a_standard_module_is_refused_and_explained(beside):
    refused = submission.shadowing(beside("json.py"))
    assert list(refused) == ["json.py"]
    assert refused["json.py"].startswith("json.py has the name of the module json (standard library)")
    assert "rename it" in refused["json.py"]


def test_a_file_named_like_an_installed_package_or_the_kit_is_refused(beside):
    refused = submission.shadowing(beside("torch.py", "autograder.py"))
    assert sorted(refused) == ["autograder.py", "torch.py"]
    assert "(installed package)" in refused["torch.py"]
    assert "(the grader's own code)" in refused["autograder.py"]


def test_the_students_own_helpers_and_non_python_files_are_not_refused(beside):
    assert submission.shadowing(beside("my_helpers.py", "json.txt", "notes.md")) == {}


def test_graded_files_are_never_refused_even_when_they_shadow(tmp_path):
    write(tmp_path / "rnn_layers.py", GOOD)
    write(tmp_path / "json.py", "x = 1\n")
    statuses = submission.locate(str(tmp_path), ["rnn_layers"])
    assert submission.shadowing(statuses, graded=("json",)) == {}
    statuses = submission.locate(str(tmp_path), ["rnn_layers", "json"])
    assert submission.shadowing(statuses) == {}


def test_shadowing_files_in_folders_without_a_found_module_do_not_matter(tmp_path):
    write(tmp_path / "hw" / "rnn_layers.py", GOOD)
    write(tmp_path / "json.py", "x = 1\n")  # the top folder holds no graded file: never copied
    statuses = submission.locate(str(tmp_path), ["rnn_layers"])
    assert submission.shadowing(statuses) == {}


def test_nothing_is_refused_when_no_module_was_found(tmp_path):
    write(tmp_path / "json.py", "x = 1\n")
    assert submission.shadowing(submission.locate(str(tmp_path), ["rnn_layers"])) == {}


# --------------------------------------------------------------------------- make_scratch
@pytest.fixture
def scratch_of():
    made = []

    def make(statuses, **kw):
        made.append(submission.make_scratch(statuses, **kw))
        return made[-1]

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def test_scratch_holds_the_graded_file_and_helpers_but_not_shadowing_or_other_files(tmp_path, scratch_of):
    write(tmp_path / "rnn_layers.py", GOOD)
    write(tmp_path / "my_helpers.py", "def h():\n    return 1\n")
    write(tmp_path / "json.py", "x = 1\n")
    write(tmp_path / "notes.txt", "hello\n")
    write(tmp_path / "big.py", b"#" * (submission.MAX_FILE_BYTES + 1))
    os.symlink("/etc/passwd", tmp_path / "link.py")
    scratch = scratch_of(submission.locate(str(tmp_path), ["rnn_layers"]))
    assert sorted(os.listdir(scratch)) == ["my_helpers.py", "rnn_layers.py"]
    with open(os.path.join(scratch, "rnn_layers.py"), encoding="utf-8") as f:
        assert f.read() == GOOD
    assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o700


def test_scratch_copies_at_most_max_files(tmp_path, scratch_of, monkeypatch):
    monkeypatch.setattr(submission, "MAX_FILES", 3)
    write(tmp_path / "rnn_layers.py", GOOD)
    for i in range(5):
        write(tmp_path / ("helper%d.py" % i), "x = %d\n" % i)
    scratch = scratch_of(submission.locate(str(tmp_path), ["rnn_layers"]))
    assert len(os.listdir(scratch)) == 3


def test_a_helper_name_found_in_two_folders_is_copied_once_from_the_first(tmp_path, scratch_of):
    write(tmp_path / "a" / "rnn_layers.py", GOOD)
    write(tmp_path / "a" / "util.py", "SOURCE = 'a'\n")
    write(tmp_path / "b" / "lstm_layers.py", GOOD)
    write(tmp_path / "b" / "util.py", "SOURCE = 'b'\n")
    scratch = scratch_of(submission.locate(str(tmp_path), ["rnn_layers", "lstm_layers"]))
    assert sorted(os.listdir(scratch)) == ["lstm_layers.py", "rnn_layers.py", "util.py"]
    with open(os.path.join(scratch, "util.py")) as f:
        assert f.read() == "SOURCE = 'a'\n"


def test_scratch_of_a_submission_with_nothing_found_is_empty(tmp_path, scratch_of):
    scratch = scratch_of(submission.locate(str(tmp_path / "missing"), ["rnn_layers"]))
    assert os.listdir(scratch) == []



def test_the_static_scan_reads_a_file_with_a_byte_order_mark(tmp_path):
    """What vet accepts, the scan reads too: a BOM file's forbidden line is still reported."""
    from autograder.engine import static

    path = tmp_path / "rnn_layers.py"
    path.write_bytes(b"\xef\xbb\xbfimport torch\ndef f(x):\n    return torch.nn.LSTM(3, 4)\n")
    statuses = submission.locate(str(tmp_path), ["rnn_layers"])
    assert statuses["rnn_layers"].error is None
    notes, _ = static.attach(statuses, {})  # f is no graded function: its finding becomes a note
    assert any("line 3" in n and "LSTM" in n for n in notes), notes
