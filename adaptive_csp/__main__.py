"""``python -m adaptive_csp ...``: the ``adaptive-csp`` command, e.g. under ``torchrun -m adaptive_csp train``."""

from adaptive_csp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
