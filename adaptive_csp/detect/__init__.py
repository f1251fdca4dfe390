"""Detection on the elastic CSP backbone: one set of weights, a ladder of backbone + neck levels."""
