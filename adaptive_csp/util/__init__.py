"""Helpers several floors share (floor 1: imports nothing from the package).

Import from the submodules: ``util.log`` (OnceLogger), ``util.timing`` (one timing loop),
``util.stats`` (percentile).
"""
