import json
import logging
import threading

import kopf
from kopf._core.actions.loggers import make_formatter

from podmigration.controller import logcontext, progress


def logged(prefix: bool, formatter: logging.Formatter | None = None):
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.addFilter(logcontext.MigrationFields(prefix=prefix))
    if formatter:
        handler.setFormatter(formatter)
    logger = logging.getLogger("test-logcontext")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger, lines


def test_lines_of_a_migration_name_it_its_pod_and_phase():
    logger, lines = logged(prefix=True)
    with logcontext.migration("demo", "web-abc"):
        logcontext.update("web", "Checkpointing")
        logger.info("helper answered %s", 200)
    logger.info("not about a migration")
    assert lines == ["[demo/web-abc pod=web phase=Checkpointing] helper answered 200", "not about a migration"]


def test_json_lines_carry_the_fields():
    logger, lines = logged(
        prefix=False, formatter=make_formatter(log_format=kopf.LogFormat.JSON, log_prefix=False, log_refkey=None)
    )
    with logcontext.migration("demo", "web-abc"):
        logcontext.update("web", "Restoring")
        logger.warning("slow")
    record = json.loads(lines[0])
    assert (record["message"], record["migration"], record["pod"], record["phase"]) == (
        "slow",
        "demo/web-abc",
        "web",
        "Restoring",
    )


def test_another_thread_is_not_about_the_migration():
    logger, lines = logged(prefix=True)
    with logcontext.migration("demo", "web-abc"):
        worker = threading.Thread(target=logger.info, args=("elsewhere",))
        worker.start()
        worker.join()
    assert lines == ["elsewhere"]


def test_a_call_watched_for_progress_logs_as_part_of_the_migration():
    """A blocking helper call runs in a worker thread (progress.watched); its lines still name the migration."""
    logger, lines = logged(prefix=True)
    with logcontext.migration("demo", "web-abc"):
        logcontext.update("web", "Transferring")
        progress.watched(lambda: logger.info("sent"), poll=dict, report=lambda _: None, interval=0.01)
    assert lines == ["[demo/web-abc pod=web phase=Transferring] sent"]
