"""The models a process uses for the renders it serves: each model store opened (and its
registry read) once, one model plan per settings, sessions shared by every render."""

from __future__ import annotations

from pathlib import Path

from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.pipeline.model_plan import ModelPlan, build_model_plan
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import load_manifest
from facefusion_ray.zoo.model_store import ModelStore

StoreKey = tuple[str | None, str | None]


class JobModels:
    """Model stores, plans and lazily opened sessions on one device (`execution`)."""

    def __init__(self, execution: ExecutionConfig) -> None:
        self._execution = execution
        self._stores: dict[StoreKey, ModelStore] = {}
        self._plans: dict[SwapSettings, ModelPlan] = {}
        self._sessions: dict[StoreKey, SessionFactory] = {}

    def store_for(self, settings: SwapSettings) -> ModelStore:
        """The settings' model store with its manifest (the bundled one unless a file is
        named) and the private models registered in it, read once."""
        key = _store_key(settings)
        store = self._stores.get(key)
        if store is None:
            path = None if settings.manifest_path is None else Path(settings.manifest_path)
            store = ModelStore(settings.model_store, manifest=load_manifest(path))
            self._stores[key] = store
        return store

    def plan_for(self, settings: SwapSettings) -> ModelPlan:
        """The settings' models in their roles; a model not pinned yet is pulled (and so
        pinned) first, as opening its session would."""
        plan = self._plans.get(settings)
        if plan is None:
            store = self.store_for(settings)
            plan = build_model_plan(settings, store.manifest, store.pinned_sha256s)
            self._plans[settings] = plan
        return plan

    def sessions_for(self, settings: SwapSettings) -> SessionFactory:
        key = _store_key(settings)
        sessions = self._sessions.get(key)
        if sessions is None:
            store = self.store_for(settings)
            manifest = store.manifest

            def fp16_variant_of(model_id: str) -> str | None:
                return "fp16" if "fp16" in manifest.model(model_id).variants else None

            sessions = SessionFactory(self._execution, store.local_path, fp16_variant_of)
            self._sessions[key] = sessions
        return sessions

    def sessions_opened(self) -> tuple[int, float]:
        """Sessions opened so far by every store's factory, and the seconds that took."""
        factories = list(self._sessions.values())
        return (
            sum(factory.opened for factory in factories),
            sum(factory.open_seconds for factory in factories),
        )


def _store_key(settings: SwapSettings) -> StoreKey:
    return (settings.model_store, settings.manifest_path)
