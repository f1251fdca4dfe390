"""``adaptive-csp demo``: what adaptation buys, a simulated camera day against static-max, or real frames.

The demo is an application (:mod:`adaptive_csp.apps.demo` holds its flags, its run and what it prints);
this module is its entry in the command line like every other subcommand's.
"""

from __future__ import annotations

from adaptive_csp.apps.demo import configure, run

__all__ = ["configure", "run"]
