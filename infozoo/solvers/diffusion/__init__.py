"""Diffusion state reconstruction for Dec-POMDPs (Wang, Dong, Jiang, Parkes, Tambe, AAMAS 2025).

Per-agent conditional denoisers ``D_i(x, sigma | h_i)`` (``model``), their fixed points and the
composite flow over agents (``composite``), Jacobian-rank analysis (``analysis``), the exact
denoiser of the linear-Gaussian Dec-POMDP (``exact``). The registered solver module is ``train``.
"""
