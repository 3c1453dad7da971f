"""The steps of a migration, one module per phase (rollback included), mixed into migration.MigrationRunner.

Each step reads the PodMigration's status, acts, then records what it observed; any of them may run again after
an operator restart, so each is idempotent. migration.py holds the loop that picks the step for the phase.
"""
