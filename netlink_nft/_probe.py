"""Ask the running kernel, once at start-up, which nf_tables features it has; refuse to run below the floor.

Every feature is probed by a real transaction that creates a uniquely named table holding the objects that need
the feature and deletes that table again in the same transaction, so nothing is ever left behind; by default the
probe even runs in a new, empty network namespace of its own (it goes away with the probe's socket).

The floor (`KERNEL_FLOOR`) is the oldest kernel on which every feature the trinet rulesets use exists: `inet`
tables with input/output base chains, `th`/transport-header payloads guarded by `meta l4proto`, `meta nfproto`,
`ct state`, interface names, verdict maps on interface names, single-field interval sets (rbtree) and plain hash
sets of concatenations (`ip saddr . th dport`), anonymous sets, and interval concatenations (pipapo): these need
`NFTA_SET_DESC_CONCAT`/`NFTA_SET_ELEM_KEY_END` (5.6) and the `NFT_SET_CONCAT` flag (5.7), the newest of them.
Features above the floor are used when present: the BATCH_END acknowledgement (6.10) confirms a commit with one
reply instead of one per message; DESTROY* messages (6.3) make `Batch.destroy_*` work.
"""

from __future__ import annotations

import errno
import itertools
import os
from dataclasses import dataclass, field

from netlink_nft._batch import Batch
from netlink_nft._datatypes import IFNAME, INET_SERVICE, IPV4_ADDR, VERDICT
from netlink_nft._elements import SetElement
from netlink_nft._errors import KernelTooOld, MessageError, TransactionError
from netlink_nft._expr import CtState
from netlink_nft._match import (
    IIFNAME,
    IP_SADDR,
    TCP_DPORT,
    UDP_DPORT,
    ct_state,
    dport,
    iifname,
    in_set,
    oifname,
    rule,
    saddr,
    vmap,
)
from netlink_nft._model import Chain, Family, Hook, Ruleset, Set, Table
from netlink_nft._netns import socket_in_new_netns
from netlink_nft._replace import replace_contents
from netlink_nft._transport import NftSocket, _new_socket
from netlink_nft._verdict import ACCEPT, DROP, jump

KERNEL_FLOOR = "5.7"
FLOOR_FEATURES = ("rulesets", "verdict_maps", "interval_concatenations")
_names = itertools.count()


@dataclass(frozen=True)
class KernelFeatures:
    """What the probe found. `errors` holds the errno each missing feature's transaction failed with."""

    release: str
    end_ack: bool  # BATCH_END is acknowledged (>= 6.10): one reply confirms a commit
    destroy: bool  # NFT_MSG_DESTROY* (>= 6.3): Batch.destroy_*
    rulesets: bool  # inet table, base chains, th payloads, ct state, interface names, anonymous/interval/concat sets
    verdict_maps: bool
    interval_concatenations: bool  # pipapo sets (>= 5.7)
    errors: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def missing(self) -> tuple[str, ...]:
        """The floor features this kernel lacks (empty on a supported kernel)."""
        return tuple(name for name in FLOOR_FEATURES if not getattr(self, name))

    def require(self) -> KernelFeatures:
        """Self, or `KernelTooOld` naming what is missing."""
        if self.missing:
            found = ", ".join(f"{name} ({errno.errorcode.get(self.errors.get(name, 0), '?')})" for name in self.missing)
            raise KernelTooOld(
                f"kernel {self.release} lacks nf_tables features the rulesets need: {found}; "
                f"the oldest supported kernel is {KERNEL_FLOOR}"
            )
        return self


def _rulesets(t: Table) -> Ruleset:
    pairs = Set(t, "pairs", (IPV4_ADDR, INET_SERVICE), elements=(SetElement(("192.0.2.1", 80)),))
    blocks = Set(t, "blocks", (IPV4_ADDR,), interval=True, elements=(SetElement.network("198.51.100.0/24"),))
    ports = [SetElement.interval(1000, 2000), SetElement.interval(3000, 4000)]
    rules = (
        rule(t, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
        rule(t, "input", iifname("lo"), ACCEPT),
        rule(t, "input", saddr("10.0.0.0/8"), dport("tcp", (8000, 8080)), ACCEPT),
        rule(t, "input", saddr("2001:db8::/32"), in_set(UDP_DPORT, ports), ACCEPT),
        rule(t, "input", in_set(IP_SADDR, "blocks"), DROP),
        rule(t, "input", in_set((IP_SADDR, TCP_DPORT), "pairs"), jump("sub")),
        rule(t, "output", oifname("lo"), ACCEPT),
    )
    chains = (Chain(t, "input", Hook.INPUT), Chain(t, "output", Hook.OUTPUT), Chain(t, "sub"))
    return Ruleset(t, chains, (blocks, pairs), rules)


def _verdict_maps(t: Table) -> Ruleset:
    dispatch = Set(t, "dispatch", (IFNAME,), data=VERDICT, elements=(SetElement("eth0", data=jump("sub")),))
    chains = (Chain(t, "input", Hook.INPUT), Chain(t, "sub"))
    return Ruleset(t, chains, (dispatch,), (rule(t, "input", vmap(IIFNAME, "dispatch")),))


def _interval_concatenations(t: Table) -> Ruleset:
    element = SetElement(("10.0.0.0", 80), ("10.255.255.255", 90))
    ranges = Set(t, "ranges", (IPV4_ADDR, INET_SERVICE), interval=True, elements=(element,))
    accept = rule(t, "input", in_set((IP_SADDR, TCP_DPORT), "ranges"), ACCEPT)
    return Ruleset(t, (Chain(t, "input", Hook.INPUT),), (ranges,), (accept,))


_FEATURES = {
    "rulesets": _rulesets,
    "verdict_maps": _verdict_maps,
    "interval_concatenations": _interval_concatenations,
}


def _accepted(nft: NftSocket, batch: Batch) -> int:
    """0 if the kernel committed the batch, else the errno of its first failing message."""
    try:
        nft.apply(batch)
    except TransactionError as exc:
        return exc.errors[0].errno
    return 0


def _transient(ruleset: Ruleset) -> Batch:
    """Create the ruleset's table with everything in it and delete the table again, in one transaction."""
    batch = replace_contents(ruleset)
    batch.delete_table(ruleset.table)
    return batch


def probe_kernel(netns: str | None = None) -> KernelFeatures:
    """Probe the kernel's nf_tables features with throwaway transactions, in a new empty network namespace (or in
    the namespace at path `netns`; nothing is left there either). A few milliseconds; run it once at start-up."""
    with _probe_socket(netns) as nft:
        nft.end_ack = None  # observe it here, whatever the process learnt before
        errors: dict[str, int] = {}
        for name, build in _FEATURES.items():
            code = _accepted(nft, _transient(build(_table())))
            if code:
                errors[name] = code
        end_ack = bool(nft.end_ack)  # learnt from the batches above (each requested every acknowledgement)
        destroy = Batch()
        destroy.destroy_table(_table())  # absent: a no-op where DESTROY exists, EINVAL where it does not
        code = _accepted(nft, destroy)
        if code not in (0, errno.EINVAL):
            raise TransactionError((MessageError(destroy.messages[0], code, None),))
        return KernelFeatures(
            release=os.uname().release,
            end_ack=end_ack,
            destroy=code == 0,
            errors=errors,
            **{name: name not in errors for name in _FEATURES},
        )


def _probe_socket(netns: str | None) -> NftSocket:
    if netns is not None:
        return NftSocket.open(netns)
    sock = socket_in_new_netns(_new_socket)
    try:
        return NftSocket(sock)
    except BaseException:
        sock.close()
        raise


def require_supported_kernel(netns: str | None = None) -> KernelFeatures:
    """`probe_kernel(netns)`, raising `KernelTooOld` below the floor: what a daemon calls before enforcing."""
    return probe_kernel(netns).require()


def _table() -> Table:
    return Table(Family.INET, f"netlink_nft_probe_{os.getpid()}_{next(_names)}")
