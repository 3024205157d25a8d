"""Process state and config generations, and how one replaces the other.

:class:`Runtime` lives as long as the process: metrics, the audit writer,
the quota store, maintenance mode.  A :class:`Generation` is everything
built from one config file: adapters and their guards, the health monitor,
the pipeline and the router.  A reload builds and starts a new generation
beside the old one, then swaps one reference; calls already running finish
on the generation they started on, and the old one is closed once they are
done.  Backends whose settings did not change keep their adapter, pool,
breaker and health state across the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.adapter import Adapter
from gateway.audit import AuditWriter
from gateway.auth import CredentialStore
from gateway.breaker import Breaker
from gateway.config.build import load_settings
from gateway.config.loader import ConfigError
from gateway.config.runtime import Backend, Settings
from gateway.errors import GatewayError
from gateway.guard import BackendGuard, Bulkhead, RetryBudget
from gateway.health import HealthMonitor
from gateway.heap import release_retired
from gateway.logs import AccessLog
from gateway.maintenance import MaintenanceSwitch
from gateway.metrics import Metrics
from gateway.observe import Hub
from gateway.pipeline import Pipeline
from gateway.quota import QuotaStore
from gateway.reload import reload_record
from gateway.router import Router
from gateway.sdnotify import notify, reloading
from gateway.security.lockout import CounterStore, Lockouts, SqliteCounters
from gateway.security.lockout_pg import PgCounters
from gateway.sharedstate import SharedState, StoreUnreachable
from gateway.status import StatusObserver

__all__ = ["Generation", "Runtime", "build_runtime"]

log = logging.getLogger("lc2_gateway.runtime")


class Generation:
    def __init__(self, rt: Runtime, settings: Settings, previous: Generation | None) -> None:
        self.settings = settings
        self.adapters: dict[str, Adapter] = {}
        self.guards: dict[str, BackendGuard] = {}
        self._rt = rt
        self._new: set[str] = set()  # adapters this generation created and must open
        for name, backend in settings.backends.items():
            kept = previous is not None and previous.settings.backends.get(name) == backend
            if kept:
                assert previous is not None
                self.adapters[name] = previous.adapters[name]
                self.guards[name] = previous.guards[name]
            else:
                self.adapters[name] = backend.factory.create(name, backend.options, backend.limits)
                self.guards[name] = _guard(rt, backend, self.adapters[name])
                self._new.add(name)
            # generations may retire in any order: an adapter closes with its last user
            rt.adapter_users[self.adapters[name]] = rt.adapter_users.get(self.adapters[name], 0) + 1
        breakers = {n: g.breaker for n, g in self.guards.items() if g.breaker is not None}
        self.health: HealthMonitor = HealthMonitor(
            settings.backends,
            self.adapters,
            breakers=breakers,
            on_change=rt.metrics.on_health,
            initial=previous.health.all() if previous is not None else None,
        )
        self.pipeline = Pipeline(
            settings, CredentialStore(settings.consumers), self.guards, rt.hub, rt.quotas
        )
        self.router = Router(settings.services)
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self._idle.set()

    async def open(self) -> None:
        for name in self._new:
            await self.adapters[name].open()
        await self.health.start()

    async def retire(self, deadline: float) -> None:
        """Stop probing, let running calls finish, close adapters no generation uses."""
        await self.health.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                await self._idle.wait()
        users = self._rt.adapter_users
        for adapter in self.adapters.values():
            users[adapter] -= 1
            if users[adapter] == 0:
                del users[adapter]
                with contextlib.suppress(Exception):
                    await adapter.close()


def _guard(rt: Runtime, backend: Backend, adapter: Adapter) -> BackendGuard:
    cfg = backend.config
    breaker = (
        Breaker(backend.name, cfg.circuit, on_change=rt.metrics.on_circuit)
        if cfg.circuit.enabled
        else None
    )
    return BackendGuard(
        backend.name,
        adapter,
        breaker=breaker,
        bulkhead=Bulkhead(cfg.max_concurrency or cfg.pool_size, cfg.max_queue, cfg.acquire_timeout),
        budget=RetryBudget(cfg.retry.budget),
        retries=cfg.retry.attempts,
        time_budget=max(backend.limits.acquire_timeout, backend.limits.query_timeout),
    )


class Runtime:
    def __init__(self, settings: Settings, *, registry: CollectorRegistry | None = None) -> None:
        self.metrics = Metrics(
            registry or CollectorRegistry(),
            services=list(settings.services),
            backends=list(settings.backends),
            version=settings.version,
        )
        self.audit = AuditWriter(
            settings.audit, settings.services, on_write=self.metrics.on_audit_write
        )
        self.status = StatusObserver()
        self.hub = Hub(self.audit, [self.metrics, AccessLog(settings.logging.access), self.status])
        # a fleet shares its counters and switches on PostgreSQL; one machine in a file
        pg = settings.state.postgresql
        self.shared = (
            SharedState(pg, fail_closed=settings.state.fail_closed) if pg is not None else None
        )
        self.quotas = QuotaStore(settings.quotas, self.shared)
        # failed sign-ins are counted beside the quotas: one store all workers share
        counters: CounterStore = (
            SqliteCounters(settings.quotas.store)
            if self.shared is None
            else PgCounters(self.shared)
        )
        self.lockouts = Lockouts(counters, settings.security.lockout)
        self.maintenance = MaintenanceSwitch(settings.maintenance_file, self.shared)
        self.adapter_users: dict[Adapter, int] = {}  # generations using each adapter
        self.current = Generation(self, settings, None)
        self.metrics.register_scrape(lambda: self.current, self.audit.status)
        self.metrics.on_maintenance(self.maintenance)
        if self.shared is not None:
            self.metrics.on_shared_state(self.shared)
        self.ready = False
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def settings(self) -> Settings:
        return self.current.settings

    async def start(self) -> None:
        await self.audit.start()
        if self.shared is not None:
            await self.shared.open()
            await self._note_generation()
        await self.quotas.open()
        await self.lockouts.store.open()
        await self.maintenance.start()
        await self.current.open()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in list(self._retiring):
            await task
        await self.current.retire(deadline=0)
        await self.maintenance.close()
        await self.audit.close()  # flushes queued records first
        await self.quotas.close()
        await self.lockouts.store.close()
        if self.shared is not None:
            await self.shared.close()

    async def _note_generation(self) -> None:
        """Tell the fleet which config this instance now runs (best effort)."""
        assert self.shared is not None
        with contextlib.suppress(StoreUnreachable):
            await self.shared.note_generation(self.settings.audit.instance, self.settings.version)

    async def reload(self, path: Path) -> tuple[bool, str]:
        """Validate ``path`` and swap it in; on any problem the running config stays.

        systemd hears RELOADING=1 first and READY=1 with the outcome last, so
        ``systemctl reload`` returns once the reload is applied or refused.
        """
        reloading()
        ok, message = await self._swap(path)
        notify("READY=1", f"STATUS={'reloaded' if ok else 'reload refused'}: {message}"[:200])
        return ok, message

    async def _swap(self, path: Path) -> tuple[bool, str]:
        async with self._reload_lock:
            try:
                settings = await asyncio.to_thread(load_settings, path)
            except ConfigError as exc:
                self.metrics.on_reload(False)
                log.error("config reload refused, old config kept: %s", exc)
                return False, str(exc)
            restart_only = [
                key
                for key in ("listen", "admin", "audit")
                if getattr(settings, key) != getattr(self.settings, key)
            ]
            new = Generation(self, settings, self.current)
            try:
                await new.open()
            except Exception as exc:  # an adapter that can not even be built: keep the old one
                await new.retire(deadline=0)
                self.metrics.on_reload(False)
                log.error("config reload failed while opening backends, old config kept: %s", exc)
                return False, f"opening backends: {exc}"
            try:  # no change of grants that the trail does not have
                await self.audit.commit(reload_record(self.settings, settings))
            except GatewayError as exc:
                await new.retire(deadline=0)
                self.metrics.on_reload(False)
                log.error("config reload refused, the audit did not record it: %s", exc)
                return False, f"the audit did not record the reload: {exc.detail or exc}"
            old, self.current = self.current, new
            self.audit.services = settings.services
            self.quotas.configure(settings.quotas)
            self.lockouts.policy = settings.security.lockout
            self.maintenance.path = settings.maintenance_file
            self.metrics.on_generation(settings)
            if self.shared is not None:
                await self._note_generation()
            task = asyncio.create_task(old.retire(deadline=60.0))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            # once the task has let go of ``old``, not from inside it
            task.add_done_callback(lambda _: release_retired())
            self.metrics.on_reload(True)
            note = f"; restart needed for: {', '.join(restart_only)}" if restart_only else ""
            log.info("config reloaded (version %s)%s", settings.version, note)
            return True, f"config version {settings.version}{note}"


def build_runtime(settings: Settings, *, registry: CollectorRegistry | None = None) -> Runtime:
    return Runtime(settings, registry=registry)
