"""Small chain and mesh topologies as plain data (what a topology file parses to), and an editing helper."""

from __future__ import annotations

import copy

CHAIN = {
    "topology": "chain",
    "devices": [{"name": "ue", "device": "pi"}, {"name": "sbs", "device": "pc", "latency_factor": 0.5},
                {"name": "cloud", "device": "gpu"}],
    "links": [{"from": "ue", "to": "sbs", "bandwidth_mbps": 25}, {"from": "sbs", "to": "cloud", "bandwidth_mbps": 200,
                                                                  "bits": 16}],
    "assignment": {"splits": [3, 10]},
}
MESH = {
    "topology": "mesh",
    "devices": ["ue", "root", "e1", "e2", "merge"],
    "links": [{"from": "ue", "to": "root", "bandwidth_mbps": 20}, {"from": "root", "to": "e1", "bandwidth_mbps": 50},
              {"from": "root", "to": "e2", "bandwidth_mbps": 40}, {"from": "e1", "to": "merge", "bandwidth_mbps": 100},
              {"from": "e2", "to": "merge", "bandwidth_mbps": 80}],
    "chain": ["ue"],
    "root": "root",
    "branches": [{"device": "e1", "share": 0.7}, {"device": "e2", "share": 0.3}],
    "merge": "merge",
    "assignment": {"splits": [4, 9, 15]},
}


def edited(base: dict, path: str, value: object) -> dict:
    """A deep copy of ``base`` with dotted ``path`` set to ``value`` (``...`` deletes; past a list's end appends)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    elif isinstance(node, list) and key == len(node):
        node.append(value)
    else:
        node[key] = value
    return data
