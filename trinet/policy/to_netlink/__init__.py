"""The doorway from the policy model (``trinet.policy.ruleset``) to ``netlink_nft``, in three jobs:

* ``mapping``: ``to_netlink(ruleset, generation)``, each policy value onto its one netlink counterpart;
* ``generations``: ``Installed`` and ``versioned``: full swaps move named sets between ``.g1`` and ``.g2``;
* ``transactions``: choosing the one batch: ``transaction(applied, desired)`` from what we installed,
  ``adopt(dumped, desired)`` from what the kernel holds, ``removal(table)``;

and ``counters.drop_counters(dump)``, what isolation dropped per (interface, direction).

Both models have a ``Table``, ``Chain``, ``Set``, ``Rule``, ...: these modules never import either's names bare,
they write ``nl.Set`` (netlink_nft) and ``pm.Set`` (the policy model).
"""

from trinet.policy.to_netlink.counters import drop_counters
from trinet.policy.to_netlink.generations import Installed, versioned
from trinet.policy.to_netlink.mapping import to_netlink
from trinet.policy.to_netlink.transactions import adopt, removal, transaction

__all__ = ["Installed", "adopt", "drop_counters", "removal", "to_netlink", "transaction", "versioned"]
