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


def _sections(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^## (\w+)\s*\n(.*?)(?=^## |\Z)", text, re.M | re.S)


def _what_why_fix_problems(heading: str, body: str) -> list[str]:
    """Why a section does not say What, then Why, then Fix, each with some words of its own."""
    parts = re.split(r"\*\*(What|Why|Fix):\*\*", body)
    labels = parts[1::2]
    if labels != ["What", "Why", "Fix"]:
        return [f"{heading}: labels {labels}, expected What, Why, Fix once each in that order"]
    return [f"{heading}: {label} says nothing" for label, words in zip(labels, parts[2::2]) if len(words.split()) < 2]


def test_every_section_is_what_why_fix_and_names_a_real_class():
    sections = _sections(DOC.read_text())
    names = {c.__name__ for c in all_error_classes()}
    assert {h for h, _ in sections} == names
    problems = [p for heading, body in sections for p in _what_why_fix_problems(heading, body)]
    assert problems == []


def test_the_what_why_fix_check_catches_a_missing_why_or_an_empty_part():
    assert _what_why_fix_problems("A", "**What:** it broke badly. **Fix:** do this and that.") != []
    assert _what_why_fix_problems("A", "**What:** it broke badly. **Why:** **Fix:** do this and that.") != []
    assert _what_why_fix_problems("A", "**Fix:** a b c. **What:** a b c. **Why:** a b c.") != []
    assert _what_why_fix_problems("A", "**What:** it broke badly. **Why:** a bug here. **Fix:** do this.") == []


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
