"""Errors raised while turning a crystal into a graph."""
from __future__ import annotations


class GraphError(ValueError):
    """A structure cannot be turned into a valid periodic graph.

    The message always names the structure (its id, else its formula) so that a
    failure inside a data set of thousands of crystals can be traced to one entry.
    """
