"""Data markets: a seller of information sells experiments (signalling schemes) to buyers with
private beliefs or values. See ``settings`` (the model), ``experiments`` (values, obedience, the
mechanism contract), ``theory`` (exact optima), ``metrics`` and ``env`` (``data-market-v0``)."""
