"""Dec-POMDPs: ``sensor-grid-v0``, ``dec-tiger-v0``, ``linear-gaussian-v0``, ``spread-po-v0``.

Each environment is a batched numpy model (``base.DecPOMDPModel``) behind one generic PettingZoo
parallel env; ``histories`` collects (action-observation history, true state) datasets from it.
"""
