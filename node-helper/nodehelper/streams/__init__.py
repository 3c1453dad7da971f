"""Bytes in motion: stream encodings, hashing while writing, the free-space floor every write checks."""
