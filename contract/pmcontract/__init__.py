"""The contract between the operator and the node-helpers, spelled once: who is who (certificate names), what things
are called on a node (archive ids, checkpoint and pointer images, the volumes gate file), where each endpoint is and
what its request and answer bodies hold. Standard library only, and nothing of ours: both sides import it, it
imports neither (node-helper/.importlinter).

- names.py: certificate names, archive ids, checkpoint image names, the gate file, HTTP header names
- paths.py: the endpoint paths (templates with {name} parameters) and how a caller fills them in
- bodies.py: the JSON request and answer bodies, as TypedDicts
"""
