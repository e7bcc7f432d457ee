"""GemNet: menu-based, exactly strategy-proof multi-bidder auctions (RochetNet for one bidder),
with a price transform by MILP and a feasibility certificate. The solver module is ``train``."""
