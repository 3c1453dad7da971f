"""Per-node agent of the pod migration operator: checkpoints, archive transfer, checkpoint images, cleanup."""
