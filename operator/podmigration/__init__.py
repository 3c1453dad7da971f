"""PodMigration operator and the ``kubectl migrate`` CLI: live-migrate running pods between nodes."""
