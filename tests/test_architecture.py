"""The architecture stays visible: import rules hold (lint-imports), every module states its job."""

import ast
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

PACKAGE = ROOT / "edi_pipeline"


def test_the_import_rules_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("lint-imports is not installed: pip install -e '.[test]'")
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:]


def test_every_module_and_package_states_its_job():
    for path in PACKAGE.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.split()) >= 4, path.relative_to(ROOT)


def test_no_module_sits_loose_at_the_top():
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert not loose, sorted(loose)


# A transaction kind tested by its text: ST01 or a kind label compared or searched (`== "835"`, `"837P" in kind`,
# `set_id in ("837", "835")`), or the per-type predicates tx/ keeps for itself (is_837p, is_835, ...).
_KIND_LITERAL = r"""["'](?:837P?|835|999|277(?:CA)?|TA1)["']"""
_KIND_TESTS = re.compile(
    rf"""(?:==|!=)\s*{_KIND_LITERAL}|{_KIND_LITERAL}\s*(?:==|!=|(?:not\s+)?in\b)"""
    rf"""|\bin\s*[(\[{{]\s*{_KIND_LITERAL}|\bis_(?:837p|835|999|277ca|ack)\b""")


def kind_tests(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if _KIND_TESTS.search(line)]


def test_no_module_outside_tx_tests_a_transaction_kind_by_its_text():
    """Every consumer asks tx.registry (Kind, lookup, kinds_of); only tx/ itself knows the ST01s."""
    found = {str(p.relative_to(ROOT)): hits for p in PACKAGE.rglob("*.py")
             if "tx" not in p.relative_to(PACKAGE).parts[:1] and (hits := kind_tests(p.read_text()))}
    assert not found, found


@pytest.mark.parametrize("line", ['if "837P" in kind:', 'if kind == "835":', "elif tx.set_id == '837':",
                                  'if st01 not in ("837", "835"):', "if is_837p(tx):", 'if "999" != label:'])
def test_the_kind_test_finder_finds_each_form(line):
    assert kind_tests(line) == [line]
