"""The migrations run on threads of their own: with every one of them busy, the admission webhooks and the signer,
which kopf runs on its executor, still answer; a queued migration holds no thread while it waits."""

from __future__ import annotations

import asyncio
import threading
import time

import kopf
from kopf._core.actions.invocation import invoke  # how kopf itself calls a sync handler (its executor)

from podmigration.controller import handlers
from podmigration.controller.threads import MigrationThreads
from podmigration.identity import signer
from podmigration.webhooks import admission


class AsyncStop:
    """kopf's stop flag as an async daemon gets it: ``await stopped.wait(timeout)``."""

    def __init__(self) -> None:
        self.reason: kopf.DaemonStoppingReason | None = None
        self._event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.reason is not None

    def set(self, reason: kopf.DaemonStoppingReason) -> None:
        self.reason = reason
        self._event.set()

    async def wait(self, timeout: float | None = None) -> AsyncStop:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        return self


def test_webhooks_and_the_signer_answer_while_every_migration_thread_is_busy(world):
    kube, _, _, _, deps = world
    release = threading.Event()
    kube.on_get_migration.insert(0, lambda _: release.wait(30))  # the migrations' reads hang
    threads = MigrationThreads(deps, workers=2)
    settings = kopf.OperatorSettings()
    settings.execution.max_workers = 2  # kopf's executor: no more threads than there are migrations below
    memo = kopf.Memo(deps=deps, migrations=threads, signer=type("S", (), {"handle": lambda self, name: "signed"})())

    async def scenario() -> float:
        daemons = [  # two hold both migration threads, the third waits for one
            asyncio.create_task(
                invoke(
                    handlers.migrate,
                    settings=settings,
                    kwargs={"name": f"m{i}", "namespace": "default", "stopped": AsyncStop(), "memo": memo},
                )
            )
            for i in range(3)
        ]
        await asyncio.sleep(0.2)
        began = time.monotonic()
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "checkpoint"}]}}
        try:
            await invoke(
                admission.handover_guard, settings=settings, kwargs={"body": pod, "namespace": "default", "memo": memo}
            )
        except kopf.AdmissionError as denied:
            assert denied.code == 403  # an answer: no migration hands this pod over
        await invoke(
            signer.sign_helper_certificates,
            settings=settings,
            kwargs={"body": {"metadata": {"name": "csr-1"}}, "type": "ADDED", "memo": memo},
        )
        answered = time.monotonic() - began
        assert not any(d.done() for d in daemons)
        release.set()
        await asyncio.wait_for(asyncio.gather(*daemons), 10)
        return answered

    assert asyncio.run(scenario()) < 2


def test_a_queued_migration_gives_its_thread_back_and_stops_with_the_operator(world):
    kube, _, _, _, deps = world
    kube.migrations[("default", "other")] = {
        "metadata": {"name": "other", "namespace": "default", "creationTimestamp": "2029-12-31T00:00:00Z"},
        "spec": {"podName": "x"},
        "status": {"phase": "Restoring", "sourceNode": "worker-1"},
    }
    kube.create_migration("default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter"}})
    deps.config = deps.config.__class__(**{**deps.config.__dict__, "max_per_cluster": 1})
    threads = MigrationThreads(deps, workers=1)

    async def scenario() -> None:
        stopped = AsyncStop()
        daemon = asyncio.create_task(threads.drive("default", "counter-mig", stopped))
        while (kube.migrations[("default", "counter-mig")].get("status") or {}).get("reason") != "Queued":
            await asyncio.sleep(0.05)
        # The one thread is free for other work while the migration waits.
        assert await asyncio.wait_for(threads.in_thread(lambda: "free"), 1) == "free"
        stopped.set(kopf.DaemonStoppingReason.OPERATOR_EXITING)
        await asyncio.wait_for(daemon, 2)

    asyncio.run(scenario())
    assert kube.migrations[("default", "counter-mig")]["status"]["phase"] == "Pending"
