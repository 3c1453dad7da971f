"""The node's container runtime: kubelet checkpoints, crictl/buildah/skopeo, images, OCI layouts, archive links,
CRI-O's configuration. Imports criu, streams and the base modules only."""
