"""The operator's reconciler: kopf's startup and daemon (``handlers``), one PodMigration's state machine
(``runner`` and ``steps/``), garbage collection, uninstall, metrics."""
