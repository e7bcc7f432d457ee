"""Data-market baselines: the theory optima as mechanisms, and posted prices for full information."""
