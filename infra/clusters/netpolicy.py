"""Whether a kind node's kernel lets kube-network-policies enforce NetworkPolicy.

The agent judges a connection's first packet in user space: its nftables rules hand the packet to
an nfqueue with the `queue` expression. A kernel built without that expression (CONFIG_NFT_QUEUE;
seen on these microVMs, which also load no modules) refuses the whole rule set, and the agent then
runs without ever dropping a packet. That is detected, not assumed: the same kind of rule set is
tried in a throwaway network namespace inside the node (the node shares the host's kernel), so
neither the node's nor the host's rules change.
"""

from __future__ import annotations

from smoke_tests.run import CommandError, run

# A table like the agent's: an inet filter chain at postrouting that queues to an nfqueue.
PROBE_RULES = """\
table inet kfstack-nfqueue-probe {
  chain postrouting {
    type filter hook postrouting priority srcnat - 5; policy accept;
    ip daddr 192.0.2.1 queue num 98 bypass
  }
}
"""


def nfqueue_problem(node: str, docker: str = "docker") -> str:
    """Why node container `node` cannot queue packets to user space with nftables ("" if it can)."""
    try:
        run([docker, "exec", "-i", node, "unshare", "--net", "nft", "-f", "-"], timeout=60, input_text=PROBE_RULES)
    except CommandError as exc:
        said = " ".join((exc.stderr or exc.stdout or str(exc)).split())
        return (f"the node's kernel refused an nftables `queue` rule, which kube-network-policies needs to judge "
                f"packets (a kernel without CONFIG_NFT_QUEUE): {said[-300:]}")
    return ""


def enforcement_problem(node: str, docker: str = "docker") -> str:
    """Why kube-network-policies does not enforce in node container `node` ("" when its nftables
    table is in place and hands packets to its queue): the agent's rules are what drop packets."""
    try:
        table = run([docker, "exec", node, "nft", "list", "table", "inet", "kube-network-policies"], timeout=60).stdout
    except CommandError as exc:
        said = " ".join((exc.stderr or exc.stdout or str(exc)).split())
        kernel = nfqueue_problem(node, docker)
        return f"kube-network-policies has no nftables table in the node ({said[-200:]})" + (f"; {kernel}" if kernel
                                                                                            else "")
    if "queue" not in table:
        return f"kube-network-policies' nftables table queues no packet:\n{table[-1000:]}"
    return ""
