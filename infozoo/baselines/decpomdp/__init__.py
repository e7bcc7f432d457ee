"""Dec-POMDP baselines: exact Bayes filters (the floor), GRU history regression, IPPO (SB3)."""
