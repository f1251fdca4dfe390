"""``adaptive-csp`` command line: argparse subcommands, each a thin call into the floors below.

Subcommand contract: a module named in :data:`COMMANDS` exposes

- ``configure(parser: argparse.ArgumentParser) -> None`` — adds its arguments to its subparser, and
- ``run(args: argparse.Namespace) -> int`` — does the work and returns the exit status.

A target written ``"module:function"`` is a legacy ``function(argv) -> int`` that parses its own arguments
(it gets everything after the subcommand name); it stays supported until its owner converts it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from importlib import metadata

__all__ = ["COMMANDS", "build_parser", "main"]

# subcommand -> (module with configure/run, or legacy "module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("adaptive_csp.commands.demo", "what adaptation buys: a simulated camera day vs static-max, or real frames"),
    "train": ("adaptive_csp.commands.train", "train an elastic model with the sandwich rule"),
    "profile": ("adaptive_csp.commands.profile", "measure candidate levels, keep the Pareto ladder"),
    "train-detector": ("adaptive_csp.commands.train_detector", "train the adaptive detector (synthetic belt scenes or COCO data)"),
    "train-namer": ("adaptive_csp.commands.train_namer", "train the second-stage namer that names a detector's boxes"),
    "profile-detector": ("adaptive_csp.commands.profile_detector", "measure a detector's levels (mAP, latency), keep the Pareto ladder"),
    "sensors": ("adaptive_csp.commands.sensors", "live sensor readings and what each preset would choose"),
    "simulate": ("adaptive_csp.commands.simulate", "simulate one policy in one scenario"),
    "compare": ("adaptive_csp.commands.compare", "policy x scenario comparison table"),
    "export": ("adaptive_csp.commands.export", "export ladder levels to ONNX / TorchScript with a JSON sidecar"),
}

class DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help, each once: not when the help text already says its default, nor
    for a flag's False, a None or a suppressed default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


#: the help style every subcommand shares: defaults are printed by argparse, not written into help texts
FORMATTER = DefaultsOnce

#: errors a user's input causes (a missing folder, a bad value, a file that cannot be read): one line and
#: exit status 2 at the command line; ``--debug`` shows the traceback instead
USER_ERRORS = (ValueError, OSError)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _guarded(command: str, call: Callable[[], int | None], debug: bool) -> int:
    try:
        return int(call() or 0)
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"adaptive-csp {command}: error: {_one_line(e)} (--debug shows the traceback)", file=sys.stderr)
        return 2


def _version() -> str:
    try:
        return metadata.version("adaptive-csp")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        from adaptive_csp import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    ap = argparse.ArgumentParser(prog="adaptive-csp", formatter_class=FORMATTER,
                                 description="Adaptive-inference runtime for vision on edge devices.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (target, help_) in COMMANDS.items():
        module, _, legacy = target.partition(":")
        if legacy:  # parses its own arguments, --help included
            p = sub.add_parser(name, help=help_, add_help=False)
            p.set_defaults(_legacy=(module, legacy))
            continue
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=FORMATTER)
        mod = importlib.import_module(module)
        mod.configure(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")
        p.set_defaults(_run=mod.run)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    if not argv:
        ap.print_help()
        return 2
    args, rest = ap.parse_known_args(argv)
    if getattr(args, "_legacy", None):
        module, fn = args._legacy
        legacy: Callable[[list[str]], int | None] = getattr(importlib.import_module(module), fn)
        debug = args.debug or "--debug" in rest
        return _guarded(args.command, lambda: legacy([r for r in rest if r != "--debug"]), debug)
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    args._argv = [x for x in argv[argv.index(args.command) + 1:] if x != "--debug"]  # recorded in metadata
    return _guarded(args.command, lambda: args._run(args), bool(args.debug))


if __name__ == "__main__":
    raise SystemExit(main())
