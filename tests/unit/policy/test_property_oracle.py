"""Property: for random clusters, policies and flows, interpreter(compile(...)) agrees with the oracle (§2.10).

Covers IPv4 and IPv6, TCP/UDP/SCTP/ICMP, named ports (ingress and egress), endPort, ipBlock with except, every
selector operator, invalid items of every §2.9 row, several networks (one of an unpoliced CNI type), stacked policies.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from tests.unit.policy.builders import World, nad, namespace, pod, policy, property_settings

NETWORKS = ("ns/net1", "ns/net2", "x/net3")  # net3 is ipvlan: never policed with the default plugin list
NAMESPACES = ("ns", "x")
EXTERNALS = ("10.1.0.200", "10.9.9.9", "fd00:1::c8", "2001:db8::9")
CONTAINER_PORTS = (("http", "TCP", 80), ("http", "TCP", 8080), ("dns", "UDP", 53), ("sctp-p", "SCTP", 90))

labels_st = st.fixed_dictionaries({}, optional={"app": st.sampled_from("abc"), "tier": st.sampled_from("fb")})

requirement_st = st.one_of(
    st.builds(
        lambda k, op, vs: {"key": k, "operator": op, "values": vs},
        st.sampled_from(["app", "tier", "team"]),
        st.sampled_from(["In", "NotIn"]),
        st.lists(st.sampled_from("abcfb"), min_size=1, max_size=2),
    ),
    st.builds(
        lambda k, op: {"key": k, "operator": op},
        st.sampled_from(["app", "tier", "team"]),
        st.sampled_from(["Exists", "DoesNotExist"]),
    ),
)
invalid_selector_st = st.sampled_from(
    [
        {"matchLabels": {"bad key!": "x"}},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]},
        {"matchExpressions": [{"key": "app", "operator": "Bogus"}]},
    ]
)
selector_st = st.one_of(
    st.just({}),
    st.builds(lambda m: {"matchLabels": m}, labels_st),
    st.builds(lambda m, e: {"matchLabels": m, "matchExpressions": e}, labels_st, st.lists(requirement_st, max_size=2)),
) | st.integers(0, 19).flatmap(lambda roll: invalid_selector_st if roll == 0 else st.just({}))
ns_selector_st = st.one_of(
    st.just({}),
    st.builds(lambda t: {"matchLabels": {"team": t}}, st.sampled_from("ab")),
    st.builds(
        lambda t: {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": [t]}]}, st.sampled_from("ab")
    ),
)
IP_BLOCKS = (  # (cidr, excepts valid for it); a few invalid combinations are drawn separately
    ("10.1.0.0/24", ["10.1.0.2/32", "10.1.0.0/30", "10.1.0.4/31"]),
    ("10.1.0.0/16", ["10.1.0.0/24", "10.1.0.3/32"]),
    ("10.1.0.5/24", ["10.1.0.5/32"]),
    ("0.0.0.0/0", ["10.1.0.0/29", "10.2.0.0/16"]),
    ("fd00:1::/64", ["fd00:1::2/128", "fd00:1::/126"]),
    ("::/0", ["fd00:1::/125", "fd00:2::/64"]),
)
ip_block_st = st.one_of(
    st.sampled_from(IP_BLOCKS).flatmap(
        lambda block: st.builds(
            lambda excepts: {"cidr": block[0], **({"except": excepts} if excepts else {})},
            st.lists(st.sampled_from(block[1]), max_size=2, unique=True),
        )
    ),
    st.sampled_from(
        [
            {"cidr": "bogus"},
            {"cidr": "10.1.0.0/24", "except": ["10.2.0.0/24"]},
            {"cidr": "10.1.0.0/24", "except": ["10.1.0.0/24"]},
            {"cidr": "10.1.0.0/24", "except": ["fd00::/64"]},
            {"cidr": "10.1.0.0/24", "except": ["x"]},
        ]
    ),
)
peer_st = st.one_of(
    st.builds(lambda b: {"ipBlock": b}, ip_block_st),
    st.builds(lambda b: {"ipBlock": b}, ip_block_st),
    st.builds(lambda s: {"podSelector": s}, selector_st),
    st.builds(lambda s: {"namespaceSelector": s}, ns_selector_st),
    st.builds(lambda s, n: {"podSelector": s, "namespaceSelector": n}, selector_st, ns_selector_st),
    st.sampled_from([{}, {"ipBlock": {"cidr": "10.1.0.0/16"}, "podSelector": {}}]),
)
port_item_st = st.builds(
    lambda proto, port, end: {
        k: v for k, v in (("protocol", proto), ("port", port), ("endPort", end)) if v is not None
    },
    st.sampled_from([None, "TCP", "UDP", "SCTP", "tcp", "ICMP"]),
    st.sampled_from([None, 53, 80, 81, 90, 8080, 0, 70000, "http", "dns", "sctp-p", "nope", "Bad_Name"]),
    st.sampled_from([None, None, None, 85, 79, 9000]),
)
rule_st = st.builds(
    lambda ports, peers: {k: v for k, v in (("ports", ports), ("peers", peers)) if v is not None},
    st.lists(port_item_st, min_size=1, max_size=3) | st.none() | st.just([]),
    st.lists(peer_st, min_size=1, max_size=3) | st.none() | st.just([]),
)
policy_st = st.builds(
    lambda ns, sel, types, ing, eg, nets: (ns, sel, types, ing, eg, nets),
    st.sampled_from(["ns", "ns", "x"]),
    selector_st,
    st.sampled_from(
        [
            None,
            None,
            [],
            ["Ingress"],
            ["Egress"],
            ["Ingress", "Egress"],
            ["Ingress", "Egress"],
            ["ingress"],
            ["Foo"],
            ["Egress", "Bar"],
        ]
    ),
    st.lists(rule_st, max_size=3) | st.none(),
    st.lists(rule_st, max_size=3) | st.none(),
    st.lists(st.sampled_from(["net1", "ns/net1", "ns/net2", "net1", "x/net3", "net2", "", "ns/ghost"]), max_size=2).map(
        lambda nets: nets or ["net1"]
    ),
)
pod_st = st.builds(
    lambda ns, labels, nets, phase, host, ports: (ns, labels, nets, phase, host, ports),
    st.sampled_from(["ns", "ns", "x"]),
    labels_st,
    st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)).map(
        lambda r: [n for n, roll, p in zip(NETWORKS, r, (9, 5, 2), strict=True) if roll < p]
    ),
    st.sampled_from(["Running", "Running", "Running", "Pending", "Succeeded"]),
    st.sampled_from([False, False, False, False, True]),
    st.lists(st.sampled_from(CONTAINER_PORTS), unique=True, max_size=3),
)


def _rule_json(rule: dict[str, Any], peer_field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "ports" in rule:
        out["ports"] = rule["ports"]
    if "peers" in rule:
        out[peer_field] = rule["peers"]
    return out


@st.composite
def worlds(draw: st.DrawFn) -> World:
    ns_labels = {n: draw(st.sampled_from(["a", "b"])) for n in NAMESPACES}
    pods = []
    for i, (ns, labels, nets, phase, host, ports) in enumerate(draw(st.lists(pod_st, min_size=1, max_size=5))):
        attachments = []
        for net in nets:
            k = NETWORKS.index(net) + 1
            ifname = f"net{k}"
            status_name = net if draw(st.booleans()) or net.split("/")[0] != ns else net.split("/")[1]
            attachments.append((status_name, ifname, [f"10.{k}.0.{i + 1}", f"fd00:{k}::{i + 1}"]))
        pods.append(pod(f"{ns}/p{i}", labels, attachments, phase=phase, host_network=host, ports=ports))
    policies = []
    for j, (ns, sel, types, ing, eg, nets) in enumerate(draw(st.lists(policy_st, min_size=1, max_size=4))):
        spec: dict[str, Any] = {"podSelector": sel}
        if types is not None:
            spec["policyTypes"] = types
        if ing is not None:
            spec["ingress"] = [_rule_json(r, "from") for r in ing]
        if eg is not None:
            spec["egress"] = [_rule_json(r, "to") for r in eg]
        policies.append(policy(f"{ns}/pol{j}", spec, ",".join(nets) if nets else None))
    nads = [nad("ns/net1"), nad("ns/net2", "macvlan", conflist=True), nad("x/net3", "ipvlan")]
    namespaces = [namespace(n, team=t) for n, t in ns_labels.items()]
    return World(pods, policies, namespaces, nads)


probe_st = st.tuples(
    st.sampled_from(["TCP", "TCP", "UDP", "SCTP", "ICMP"]),
    st.sampled_from([53, 80, 81, 90, 8080]),
    st.sampled_from([4, 6]),
    st.sampled_from(["ns/net1", "ns/net1", "ns/net2", "x/net3"]),
)


@property_settings
@given(worlds(), st.lists(probe_st, min_size=1, max_size=3))
def test_2_10_compiled_rulesets_agree_with_the_oracle(world: World, probes: list[tuple[Any, ...]]) -> None:
    """Every ordered pair of endpoints (pods and external addresses), for each drawn probe."""
    for proto, port, family, network in probes:
        endpoints = [*world.pods, *EXTERNALS]
        for src in endpoints:
            for dst in endpoints:
                if src in EXTERNALS and dst in EXTERNALS:
                    continue
                if not (world.has_address(src, network, family) and world.has_address(dst, network, family)):
                    continue
                verdict = world.allowed(src, dst, proto, None if proto == "ICMP" else port, family, network)
                isolated = any(world.ruleset(ref).enforces for ref in (src, dst) if ref in world.pods)
                event(f"{'allowed' if verdict else 'blocked'}{' (isolated)' if isolated else ''}")
