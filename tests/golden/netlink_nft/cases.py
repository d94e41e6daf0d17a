"""Small rulesets written twice: as `nft` input and as netlink_nft model. Shared by the golden test and by
`regenerate.py`, which records the bytes `nft --debug=mnl` sends for each."""

from __future__ import annotations

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    IIFNAME,
    INET_SERVICE,
    TCP_DPORT,
    VERDICT,
    Batch,
    Chain,
    Counter,
    CtState,
    Family,
    Hook,
    Log,
    Policy,
    Set,
    SetElement,
    Table,
    ct_state,
    daddr,
    dport,
    iifname,
    in_set,
    jump,
    rule,
    saddr,
    sport,
    vmap,
)

T = Table(Family.INET, "t")
INPUT = Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT)


def _batch(*steps: object) -> Batch:
    batch = Batch()
    batch.add_table(T)
    for step in steps:
        if isinstance(step, Chain):
            batch.add_chain(step)
        elif isinstance(step, Set):
            batch.add_set(step)
        else:
            batch.add_rule(step)  # type: ignore[arg-type]
    return batch


def base_chain_rules() -> Batch:
    return _batch(
        INPUT,
        Chain(T, "sub"),
        rule(T, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
        rule(T, "input", iifname("lo"), ACCEPT),
        rule(T, "input", saddr("10.1.0.0/16"), dport("tcp", 80), ACCEPT),
        rule(T, "input", saddr("2001:db8::/33"), sport("udp", 53), DROP),
        rule(T, "input", daddr("10.2.0.0/23"), dport("tcp", (1000, 2000)), Counter(), ACCEPT),
        rule(T, "input", jump("sub")),
    )


def named_sets() -> Batch:
    ports = Set(T, "ports", (INET_SERVICE,), elements=(SetElement(80), SetElement(443)))
    dispatch = Set(T, "vm", (IFNAME,), data=VERDICT, elements=(SetElement("eth1", data=ACCEPT),))
    return _batch(
        INPUT,
        ports,
        dispatch,
        rule(T, "input", in_set(TCP_DPORT, "ports"), ACCEPT),
        rule(T, "input", vmap(IIFNAME, "vm")),
    )


def anonymous_log_comment() -> Batch:
    return _batch(
        INPUT,
        rule(T, "input", in_set(TCP_DPORT, [22, 80]), ACCEPT),
        rule(T, "input", dport("udp", 53), Log(prefix="dns ", group=3), ACCEPT, comment="dns in"),
        rule(T, "input", daddr("10.9.0.0/16"), Log(prefix="x: ", level=6), DROP),
    )


CASES = {
    "base_chain_rules": (
        base_chain_rules,
        """table inet t {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state established,related accept
        iifname "lo" accept
        ip saddr 10.1.0.0/16 tcp dport 80 accept
        ip6 saddr 2001:db8::/33 udp sport 53 drop
        ip daddr 10.2.0.0/23 tcp dport 1000-2000 counter accept
        jump sub
    }
    chain sub {
    }
}
""",
    ),
    "named_sets": (
        named_sets,
        """table inet t {
    chain input {
        type filter hook input priority 0; policy accept;
    }
    set ports { type inet_service; elements = { 80, 443 }; }
    map vm { type ifname : verdict; elements = { "eth1" : accept }; }
}
add rule inet t input tcp dport @ports accept
add rule inet t input iifname vmap @vm
""",
    ),
    "anonymous_log_comment": (
        anonymous_log_comment,
        """table inet t {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport { 22, 80 } accept
        udp dport 53 log prefix "dns " group 3 accept comment "dns in"
        ip daddr 10.9.0.0/16 log prefix "x: " level info drop
    }
}
""",
    ),
}
