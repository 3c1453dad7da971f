"""The operator's ways out: the Kubernetes API (``kube``), the node-helpers (``helperclient``), Events, and the
settings that tell them where to go (``config``). Imports ``api`` and ``domain`` only."""
