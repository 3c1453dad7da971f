"""The target side of a restore: checkpoint images, settling restored containers, the aliases that follow."""
