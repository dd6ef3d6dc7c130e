import pickle
import re
from pathlib import Path

import pytest

from im_core import errors
from im_core.errors import DOCS_ERRORS_URL, ImError, all_error_classes

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_error_class_has_a_section_in_docs_errors_md():
    headings = {h.lower() for h in re.findall(r"^## (\w+)\s*$", DOC.read_text(), re.M)}
    missing = [c.__name__ for c in all_error_classes() if c.help_anchor() not in headings]
    assert missing == []
    assert len(all_error_classes()) == len(errors.__all__) - 2  # minus DOCS_ERRORS_URL and all_error_classes


def test_every_section_is_what_why_fix_and_names_a_real_class():
    text = DOC.read_text()
    names = {c.__name__ for c in all_error_classes()}
    for heading, body in re.findall(r"^## (\w+)\s*\n(.*?)(?=^## |\Z)", text, re.M | re.S):
        assert heading in names, f"section {heading} has no class"
        assert "**What:**" in body and "**Fix:**" in body, heading


@pytest.mark.parametrize("cls", all_error_classes())
def test_help_url_is_derived_from_the_class_name(cls):
    exc = cls("something broke", status_code=404)
    assert exc.help_url == f"{DOCS_ERRORS_URL}#{cls.__name__.lower()}"
    assert "something broke" in str(exc) and exc.help_url in str(exc)
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is cls and clone.message == "something broke" and clone.context == {"status_code": 404}


def test_builtin_bases_let_callers_catch_familiar_types():
    assert issubclass(errors.ModelInputError, ValueError)
    assert issubclass(errors.InvalidParameterError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert all(issubclass(c, ImError) for c in all_error_classes())
