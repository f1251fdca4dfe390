"""`adaptive-csp` command line: each subcommand is a thin call into a module's ``main(argv) -> int``."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("adaptive_csp.runtime.demo", "main", "conveyor-belt camera demo on the shipped model"),
    "train": ("adaptive_csp.train.cli", "train_main", "train an elastic model with the sandwich rule"),
    "profile": ("adaptive_csp.train.cli", "profile_main", "measure candidate levels, keep the Pareto ladder"),
    "sensors": ("adaptive_csp.sensors.cli", "main", "live sensor readings and what each preset would choose"),
    "simulate": ("adaptive_csp.sim.cli", "simulate_main", "simulate one policy in one scenario"),
    "compare": ("adaptive_csp.sim.cli", "compare_main", "policy x scenario comparison table"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: adaptive-csp <command> [options]\n\ncommands:")
        for name, (_, _, help_) in COMMANDS.items():
            print(f"  {name:<10} {help_}")
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"adaptive-csp: unknown command {cmd!r}; try --help", file=sys.stderr)
        return 2
    mod, fn, _ = COMMANDS[cmd]
    return int(getattr(importlib.import_module(mod), fn)(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
