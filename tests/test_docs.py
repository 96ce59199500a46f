"""The README documents every command and every family of issue codes the code can emit."""

import re

from click.testing import CliRunner
from conftest import ROOT

from edi_pipeline.cli.commands import cli
from edi_pipeline.codes.tables import load_tables

README = (ROOT / "README.md").read_text()


def test_every_command_is_in_the_readme():
    for name in cli.commands:
        assert f"edi-pipeline {name}" in README, name


def test_every_command_has_help_with_examples():
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", {name: cmd})
        for sub in subs:
            args = [name, sub, "--help"] if sub != name else [name, "--help"]
            r = CliRunner().invoke(cli, args)
            assert r.exit_code == 0, args
            assert "Example" in r.output or "example" in r.output, args


def test_every_issue_code_family_is_documented():
    codes = set()
    for path in (ROOT / "edi_pipeline").rglob("*.py"):
        codes |= set(re.findall(r'"((?:ENV|SYN|BAL|CODE|NPI)-[A-Z0-9-]+)"', path.read_text()))
    assert codes
    table = README.split("## Issue codes", 1)[1].split("##", 1)[0]
    for code in codes:
        family = code.split("-", 1)[0]
        assert f"`{code}`" in table or f"`{family}-*`" in table, code


def test_every_rule_is_listed_and_explained():
    r = CliRunner().invoke(cli, ["rules", "list"])
    for rule_id in load_tables().rules:
        assert rule_id in r.output
        explained = CliRunner().invoke(cli, ["rules", "explain", rule_id])
        assert explained.exit_code == 0 and rule_id in explained.output
