"""trinet: a MultiNetworkPolicy enforcer for Multus secondary networks."""

__version__ = "0.1.0"
