"""This node's archives: the write-once store, its sha256 records, keyed digests, the operator's grants. Imports
streams and the base modules only."""
