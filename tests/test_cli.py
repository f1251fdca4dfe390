"""The `adaptive-csp` dispatcher: argparse subcommands, --version, the configure/run contract, legacy main(argv)."""

from __future__ import annotations

import re
import sys
import types
from importlib import metadata

import pytest

from adaptive_csp import cli


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"adaptive-csp {metadata.version('adaptive-csp')}"


def test_help_lists_every_command(capsys):
    assert cli.main([]) == 2  # no command: the help, and a usage error status
    out = capsys.readouterr().out
    flat = re.sub(r"-\s+", "-", " ".join(out.split()))  # argparse may wrap a line after a hyphen
    for name, (_, help_) in cli.COMMANDS.items():
        assert name in out and " ".join(help_.split()) in flat


def test_unknown_command_and_option_are_usage_errors(capsys):
    for argv in (["no-such-command"], ["sensors", "--no-such-option"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err


@pytest.mark.parametrize("name", [n for n, (t, _) in cli.COMMANDS.items() if ":" not in t])
def test_converted_commands_share_one_help_style(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith(f"usage: adaptive-csp {name}")
    assert "(default:" in out  # argparse prints the defaults: one formatter for every subcommand


def _fake_module(monkeypatch, name: str, **attrs) -> None:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)


def test_configure_run_contract(monkeypatch):
    seen = {}

    def configure(p):
        p.add_argument("--n", type=int, default=1)

    def run(args):
        seen["n"] = args.n
        return 3

    _fake_module(monkeypatch, "fake_cmd", configure=configure, run=run)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_cmd", "a fake command"))
    assert cli.main(["fake", "--n", "7"]) == 3 and seen == {"n": 7}


def test_legacy_main_gets_the_rest_of_the_line(monkeypatch):
    got = []
    _fake_module(monkeypatch, "fake_legacy", main=lambda argv: got.append(argv) or 0)
    monkeypatch.setitem(cli.COMMANDS, "old", ("fake_legacy:main", "a legacy command"))
    assert cli.main(["old", "--frames", "5", "-h", "x"]) == 0
    assert got == [["--frames", "5", "-h", "x"]]  # its own options and --help, untouched


def test_bad_user_input_is_one_line_and_status_2(capsys, tmp_path):
    missing = tmp_path / "no-such-folder"
    assert cli.main(["train", "--data", str(missing), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a folder" in err and str(missing) in err
    assert err.startswith("adaptive-csp train: error:")
    with pytest.raises(ValueError, match="not a folder"):  # --debug: the traceback, before or after the command
        cli.main(["--debug", "train", "--data", str(missing), "--out", str(tmp_path / "run")])
    with pytest.raises(ValueError, match="not a folder"):
        cli.main(["train", "--data", str(missing), "--out", str(tmp_path / "run"), "--debug"])


@pytest.mark.parametrize("name", [n for n, (t, _) in cli.COMMANDS.items() if ":" not in t])
def test_each_default_is_shown_once(name, capsys):
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for opt in re.split(r"\s(?=--?[a-z])", out):  # one chunk per option
        assert len(re.findall(r"\bdefault\b", opt, flags=re.I)) <= 1, opt
    assert "(default: None)" not in out and "(default: False)" not in out
