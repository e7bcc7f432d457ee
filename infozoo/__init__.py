"""infozoo: multi-agent problems with private information as PettingZoo environments.

>>> import infozoo
>>> env = infozoo.make("auction-v0", setting="additive-2x2-uniform", mechanism="vcg")
"""

from infozoo._version import __version__
from infozoo.registry import list_envs, make, register

__all__ = ["__version__", "list_envs", "make", "register"]
