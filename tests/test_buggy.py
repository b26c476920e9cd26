"""Every buggy variant loses points exactly on the functions it breaks, with its hint."""
import importlib
import os
import pkgutil

import pytest
from helpers import assert_corpus_size, assert_breaks, make_variant

import buggy
from autograder.engine import runner

BUGS = []
for info in pkgutil.iter_modules([os.path.dirname(buggy.__file__)]):
    BUGS += importlib.import_module("buggy." + info.name).BUGS


pytestmark = pytest.mark.usefixtures("zygote")  # conftest.py: workers forked from one zygote


def test_corpus_is_large_enough():
    assert_corpus_size(BUGS)


@pytest.mark.parametrize("bug", BUGS, ids=[b.name for b in BUGS])
def test_bug_loses_points_only_where_it_breaks(bug, plans, tmp_path):
    sub = make_variant(str(tmp_path / "sub"), bug.file, bug.edits)
    report = runner.grade(sub, plans([bug.file[:-3]]))
    assert_breaks(bug, report)
