"""The models of one render, each in its role, resolved once from its settings and store.

Roles come from the settings (which detector, landmarker, swapper ...) and from the manifest's
own fields (a swapper's `recognizer` and `embedding_converter`, a landmarker's
`landmark_estimator`), never from model ids. The driver resolves the plan once per render; the
pipeline builders, the analysis key and the render key all read it, and it travels to the
actors with the render.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from facefusion_ray.errors import ModelError, SettingsError
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import Manifest, ModelSpec


class Role(StrEnum):
    DETECTOR = "detector"
    # 68 points from the face's crop, refining the detector's 5.
    LANDMARKER = "landmarker"
    # 68 points estimated from 5, which the landmarker needs for a face's angle.
    LANDMARK_ESTIMATOR = "landmark_estimator"
    # Embeds target faces for the reference and identity-map selectors.
    TARGET_RECOGNIZER = "target_recognizer"
    # Embeds the source faces into the identity a neural swapper takes.
    SOURCE_RECOGNIZER = "source_recognizer"
    EMBEDDING_CONVERTER = "embedding_converter"
    SWAPPER = "swapper"
    ENHANCER = "enhancer"
    OCCLUDER = "occluder"


AUTO_RECOGNIZER = "auto"
EMBEDDED_RECOGNIZER = "sface"
# The roles whose results the analysis cache stores; every other role only draws pixels.
ANALYSIS_ROLES = frozenset(
    {Role.DETECTOR, Role.LANDMARKER, Role.LANDMARK_ESTIMATOR, Role.TARGET_RECOGNIZER}
)
# The manifest kind each role's model must have.
_KINDS = {
    Role.DETECTOR: "detector",
    Role.LANDMARKER: "landmarker",
    Role.LANDMARK_ESTIMATOR: "landmarker",
    Role.TARGET_RECOGNIZER: "recognizer",
    Role.SOURCE_RECOGNIZER: "recognizer",
    Role.EMBEDDING_CONVERTER: "embedding_converter",
    Role.SWAPPER: "swapper",
    Role.ENHANCER: "enhancer",
    Role.OCCLUDER: "occluder",
}


@dataclass(frozen=True)
class PlannedModel:
    role: Role
    spec: ModelSpec
    sha256: str

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def identity(self) -> dict[str, object]:
        """What makes this model's results what they are: its file and how it is read."""
        return {
            "id": self.model_id,
            "sha256": self.sha256,
            "size": list(self.spec.size),
            "template": self.spec.template,
            "parameters": dict(sorted(self.spec.parameters.items())),
        }


@dataclass(frozen=True)
class ModelPlan:
    models: tuple[PlannedModel, ...]

    def get(self, role: Role) -> PlannedModel | None:
        return next((model for model in self.models if model.role is role), None)

    def require(self, role: Role) -> PlannedModel:
        model = self.get(role)
        if model is None:
            raise SettingsError(f"this render uses no {role.value.replace('_', ' ')}")
        return model

    def identities(self, roles: Iterable[Role]) -> dict[str, dict[str, object]]:
        wanted = frozenset(roles)
        return {model.role.value: model.identity() for model in self.models if model.role in wanted}


def model_choices(settings: SwapSettings, manifest: Manifest) -> dict[Role, str]:
    """Role -> model id for every model `settings` asks for, checked against the manifest."""
    chosen: dict[Role, str] = {Role.DETECTOR: settings.face_detector_model}
    if settings.face_landmarker_model is not None:
        chosen[Role.LANDMARKER] = settings.face_landmarker_model
    if settings.face_selector.needs_embeddings:
        chosen[Role.TARGET_RECOGNIZER] = target_recognizer(settings, manifest)
    if not settings.uses_classic_swapper:
        chosen[Role.SWAPPER] = settings.face_swapper_model
    if settings.face_enhancer_model is not None:
        chosen[Role.ENHANCER] = settings.face_enhancer_model
    if settings.face_occluder_model is not None:
        chosen[Role.OCCLUDER] = settings.face_occluder_model
    for role, model_id in list(chosen.items()):
        spec = _spec_of_kind(manifest, model_id, _KINDS[role])
        chosen.update(_declared_companions(role, spec))
    for role, model_id in chosen.items():
        _spec_of_kind(manifest, model_id, _KINDS[role])
    return chosen


def target_recognizer(settings: SwapSettings, manifest: Manifest) -> str:
    """The model that embeds target faces. `auto` follows FaceFusion, which compares faces with
    the ArcFace its swappers embed sources with: a neural swapper's own recognizer (so
    --reference-face-distance means what it means there); the classic swapper, which runs on
    the embedded models only, uses the embedded recognizer."""
    if settings.face_recognizer_model != AUTO_RECOGNIZER:
        return settings.face_recognizer_model
    if settings.uses_classic_swapper:
        return EMBEDDED_RECOGNIZER
    swapper = _spec_of_kind(manifest, settings.face_swapper_model, _KINDS[Role.SWAPPER])
    return str(swapper.parameters.get("recognizer", EMBEDDED_RECOGNIZER))


def _declared_companions(role: Role, spec: ModelSpec) -> dict[Role, str]:
    """The models a model's manifest entry names for its own use."""
    fields: Mapping[Role, str]
    if role is Role.SWAPPER:
        if "recognizer" not in spec.parameters:
            raise ModelError(f"swapper {spec.model_id} names no recognizer in its manifest entry")
        fields = {
            Role.SOURCE_RECOGNIZER: "recognizer",
            Role.EMBEDDING_CONVERTER: "embedding_converter",
        }
    elif role is Role.LANDMARKER:
        fields = {Role.LANDMARK_ESTIMATOR: "landmark_estimator"}
    else:
        return {}
    return {
        companion: str(spec.parameters[name])
        for companion, name in fields.items()
        if spec.parameters.get(name) is not None
    }


def _spec_of_kind(manifest: Manifest, model_id: str, kind: str) -> ModelSpec:
    spec = manifest.model(model_id)
    if spec.kind != kind:
        raise SettingsError(f"model {model_id} is a {spec.kind}, not a {kind}")
    return spec


def build_model_plan(
    settings: SwapSettings,
    manifest: Manifest,
    pinned_sha256s: Callable[[Collection[str]], Mapping[str, str]],
) -> ModelPlan:
    """The plan of `settings`; `pinned_sha256s(model ids)` gives each model's pinned SHA-256."""
    chosen = model_choices(settings, manifest)
    pins = pinned_sha256s(sorted(set(chosen.values())))
    return ModelPlan(
        tuple(
            PlannedModel(role, manifest.model(model_id), pins[model_id])
            for role, model_id in chosen.items()
        )
    )
