"""The data-market net: a menu of experiments for one buyer (``menu``), a RegretNet-style network for
several (``multi``); ``train`` is the registered solver module."""
