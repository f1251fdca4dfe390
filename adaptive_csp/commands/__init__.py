"""Per-command modules of the ``adaptive-csp`` CLI (floor 5): each has ``configure(parser)`` and ``run(args)``.

They are thin: parse, call into the floors below, print.  :mod:`adaptive_csp.cli` registers them.
"""
