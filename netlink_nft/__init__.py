"""netlink_nft: a sans-IO nftables netlink encoder with atomic batched transactions into any network namespace.

Values in, bytes out, one transaction per update::

    t = Table(Family.INET, "multi_networkpolicy")
    peers = Set(t, "peers", (IPV4_ADDR,), interval=True, elements=(SetElement.network("10.0.0.0/8"),))
    desired = Ruleset(
        t,
        chains=(Chain(t, "input", Hook.INPUT, 0, Policy.DROP),),
        sets=(peers,),
        rules=(rule(t, "input", in_set(IP_SADDR, "peers"), dport("tcp", 80), ACCEPT),),
    )
    with NftSocket.open("/proc/1234/ns/net") as nft:      # or TrioNftSocket from trio code
        nft.apply(replace_contents(desired, dump_table(nft, t)))
        assert dump_table(nft, t) == desired

- Model (frozen, hashable values): `Table`, `Chain`, `Set` (+ `SetElement`, `AnonymousSet`), `Rule`, `Ruleset`.
- Expressions, one module each with encode/decode: `Payload`, `Meta`, `Ct`, `Cmp`, `Bitwise`, `Range`, `Lookup`,
  `Immediate`, `Counter`, `Log` (`Unknown` for anything else read back).
- Matchers that build what `nft` builds (guards included): `rule`, `eq`, `between`, `in_set`, `vmap`, `saddr`,
  `daddr`, `dport`, `sport`, `ct_state`, `iifname`, `oifname`, `l4proto`, `icmp_type`, ... over `Field`s.
- `Batch`: add/delete/destroy/flush per object, element add/delete, tagged messages, deterministic `encode()`.
- `replace_contents`: the gap-free update transaction (base chains kept, contents swapped in one batch).
- `NftSocket` (`apply`, `genid`, `request`), `dump_table` (consistent: retried while concurrent writers
  interrupt it), `TrioNftSocket`.
- Errors, all derived from `NftError`: `TransactionError` (every failing message with its object, errno and
  attribute offset; nothing applied), `OutcomeUnknown` (the commit could not be confirmed: dump and reconcile),
  `BatchTooLarge`, `DumpInterrupted`, `KernelTooOld`, `NetlinkIOError` (an `OSError` too; `NamespaceNotFound`,
  `RequestError`), `InvalidValue` / `InvalidType` for bad model values (also `ValueError` / `TypeError`).

Kernel floor: **Linux 5.7** (`KERNEL_FLOOR`), the oldest kernel with every feature the rulesets use (inet tables,
`th` payloads, `ct state`, interface names, verdict maps, interval and concatenated sets, interval concatenations:
`NFT_SET_CONCAT` arrived in 5.7). Call `require_supported_kernel()` once at start-up: it probes the running
kernel with throwaway transactions (`probe_kernel()` -> `KernelFeatures`) and raises `KernelTooOld` below the
floor. Above it, newer features are used where present: commits are confirmed by per-message acknowledgements
on every kernel and by the single BATCH_END acknowledgement from 6.10; `Batch.destroy_*` needs 6.3
(`KernelFeatures.destroy`); `replace_contents` and the trinet transactions never use DESTROY.
"""

from netlink_nft._batch import Batch, EncodedBatch, Message
from netlink_nft._datatypes import (
    ICMP_TYPE,
    ICMPV6_TYPE,
    IFNAME,
    INET_PROTO,
    INET_SERVICE,
    IPV4_ADDR,
    IPV6_ADDR,
    VERDICT,
    DataType,
)
from netlink_nft._dump import dump_table
from netlink_nft._elements import AnonymousSet, SetElement
from netlink_nft._errors import (
    BatchTooLarge,
    DumpInterrupted,
    InvalidType,
    InvalidValue,
    KernelTooOld,
    MessageError,
    NamespaceNotFound,
    NetlinkIOError,
    NftError,
    OutcomeUnknown,
    RequestError,
    TransactionError,
)
from netlink_nft._expr import (
    Bitwise,
    Cmp,
    CmpOp,
    Counter,
    Ct,
    CtKey,
    CtState,
    Expr,
    Immediate,
    Log,
    Lookup,
    Meta,
    MetaKey,
    Payload,
    PayloadBase,
    Range,
    RangeOp,
    Unknown,
)
from netlink_nft._match import (
    DADDR,
    DPORT,
    ICMP_TYPE_FIELD,
    ICMPV6_TYPE_FIELD,
    IIFNAME,
    IP6_DADDR,
    IP6_SADDR,
    IP_DADDR,
    IP_SADDR,
    META_L4PROTO,
    META_NFPROTO,
    OIFNAME,
    SADDR,
    SCTP_DPORT,
    SCTP_SPORT,
    SPORT,
    TCP_DPORT,
    TCP_SPORT,
    UDP_DPORT,
    UDP_SPORT,
    Field,
    Guard,
    Match,
    between,
    ct_state,
    daddr,
    dport,
    eq,
    icmp_type,
    icmpv6_type,
    iifname,
    in_set,
    l4proto,
    nfproto,
    oifname,
    rule,
    saddr,
    sport,
    vmap,
)
from netlink_nft._model import Chain, Family, Hook, Policy, Rule, Ruleset, Set, Table
from netlink_nft._probe import KERNEL_FLOOR, KernelFeatures, probe_kernel, require_supported_kernel
from netlink_nft._replace import replace_contents
from netlink_nft._transport import NftSocket
from netlink_nft._trio import TrioNftSocket
from netlink_nft._verdict import ACCEPT, CONTINUE, DROP, RETURN, Verdict, VerdictCode, goto, jump

__all__ = [
    "ACCEPT",
    "CONTINUE",
    "DADDR",
    "DPORT",
    "DROP",
    "ICMPV6_TYPE",
    "ICMPV6_TYPE_FIELD",
    "ICMP_TYPE",
    "ICMP_TYPE_FIELD",
    "IFNAME",
    "IIFNAME",
    "INET_PROTO",
    "INET_SERVICE",
    "IP6_DADDR",
    "IP6_SADDR",
    "IPV4_ADDR",
    "IPV6_ADDR",
    "IP_DADDR",
    "IP_SADDR",
    "KERNEL_FLOOR",
    "META_L4PROTO",
    "META_NFPROTO",
    "OIFNAME",
    "RETURN",
    "SADDR",
    "SCTP_DPORT",
    "SCTP_SPORT",
    "SPORT",
    "TCP_DPORT",
    "TCP_SPORT",
    "UDP_DPORT",
    "UDP_SPORT",
    "VERDICT",
    "AnonymousSet",
    "Batch",
    "BatchTooLarge",
    "Bitwise",
    "Chain",
    "Cmp",
    "CmpOp",
    "Counter",
    "Ct",
    "CtKey",
    "CtState",
    "DataType",
    "DumpInterrupted",
    "EncodedBatch",
    "Expr",
    "Family",
    "Field",
    "Guard",
    "Hook",
    "Immediate",
    "InvalidType",
    "InvalidValue",
    "KernelFeatures",
    "KernelTooOld",
    "Log",
    "Lookup",
    "Match",
    "Message",
    "MessageError",
    "Meta",
    "MetaKey",
    "NamespaceNotFound",
    "NetlinkIOError",
    "NftError",
    "NftSocket",
    "OutcomeUnknown",
    "Payload",
    "PayloadBase",
    "Policy",
    "Range",
    "RangeOp",
    "RequestError",
    "Rule",
    "Ruleset",
    "Set",
    "SetElement",
    "Table",
    "TransactionError",
    "TrioNftSocket",
    "Unknown",
    "Verdict",
    "VerdictCode",
    "between",
    "ct_state",
    "daddr",
    "dport",
    "dump_table",
    "eq",
    "goto",
    "icmp_type",
    "icmpv6_type",
    "iifname",
    "in_set",
    "jump",
    "l4proto",
    "nfproto",
    "oifname",
    "probe_kernel",
    "replace_contents",
    "require_supported_kernel",
    "rule",
    "saddr",
    "sport",
    "vmap",
]
