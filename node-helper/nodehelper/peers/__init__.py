"""Calls this helper makes to the helpers of other nodes (each checked to be the node it should be)."""
