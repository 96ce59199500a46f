"""The architecture stays visible: import rules hold (lint-imports), every module states its job."""

import ast
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
