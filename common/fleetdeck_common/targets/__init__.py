"""The exec target grammar: an expression such as `10.0.0.1-100,!10.0.0.7 web[01-20] @role=db`
to an ordered host list.

Pure: no I/O and no name resolution; label selectors and known hosts' addresses are answered by
functions the caller passes (the gateway knows which hosts are online with which labels and
addresses). Errors name the offending term and say why. One module per part: `hosts` (an address
or a name, and host order), `labels`, `nodesets`, `terms` (one term), `expand` (a whole
expression), `policy` (the allowlist).
"""

from .errors import TargetError
from .expand import expand_targets
from .hosts import AddressLookup, IPAddress, IPNetwork, KnownAddresses, normalise_hostname, sort_hosts
from .labels import LabelLookup, parse_labels
from .nodesets import expand_nodeset
from .policy import TargetPolicy, parse_allow_entry
from .terms import expand_term, split_terms

__all__ = [
    "AddressLookup",
    "IPAddress",
    "IPNetwork",
    "KnownAddresses",
    "LabelLookup",
    "TargetError",
    "TargetPolicy",
    "expand_nodeset",
    "expand_targets",
    "expand_term",
    "normalise_hostname",
    "parse_allow_entry",
    "parse_labels",
    "sort_hosts",
    "split_terms",
]
