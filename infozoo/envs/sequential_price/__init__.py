"""Sequential price mechanisms: the market (``sequential-price-v0``, PettingZoo, designer and bidders
as agents) and the designer's problem (``infozoo/SequentialPriceDesigner-v0``, Gymnasium)."""
