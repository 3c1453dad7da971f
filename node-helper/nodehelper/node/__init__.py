"""The kernel side of a pod: cgroups, freezer, kill, network cut, emptyDir copies below a directory fd. May
import runtime (its command lines), streams and the base modules."""
