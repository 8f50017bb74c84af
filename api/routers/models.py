"""The model registry: versions and their figures, promotion past the gate, shadow runs.

Promotion measures the candidate and the deployed model on the registry's fixed evaluation
sets (once per version and set; later calls use the cached figures) before it answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from api.deps import ModelEditor, ModelReader, ServicesDep, invalid
from api.schemas import GatePublic, ModelVersionPublic, PromotionRequest, RegistryPublic, ShadowRequest
from models.registry import ModelRegistry, PromotionRefusedError, evaluate_on_set

router = APIRouter(tags=["models"])

VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
HISTORY_SHOWN = 50


def _registry(services: ServicesDep) -> ModelRegistry:
    if services.registry is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "this run pins a model file; it has no model registry")
    return services.registry


@router.get("/api/models/registry", response_model=RegistryPublic, responses={409: {}})
def get_registry(_: ModelReader, services: ServicesDep) -> RegistryPublic:
    """Every registered version with its figures, which one the cameras run, which one shadows it."""
    registry = _registry(services)
    deployed = registry.deployed()
    shadow = registry.shadow_version()
    versions = [
        ModelVersionPublic(
            version=v.version,
            sha256=v.sha256,
            registered_at=v.registered_at,
            note=v.note,
            classes=[str(c) for c in v.card.get("classes", [])],
            metrics=v.metrics,
            deployed=deployed is not None and deployed.version == v.version,
            shadow=shadow == v.version,
        )
        for v in registry.versions()
    ]
    return RegistryPublic(
        versions=versions,
        deployed=deployed.version if deployed else None,
        shadow=shadow,
        eval_sets=[s.to_json() for s in registry.eval_sets()],
        history=registry.history()[-HISTORY_SHOWN:],
    )


@router.post("/api/models/registry/{version}/promote", response_model=GatePublic, responses={404: {}, 409: {}})
def promote(version: VersionPath, body: PromotionRequest, principal: ModelEditor, services: ServicesDep) -> GatePublic:
    """Deploy `version` if it does no worse than the deployed model on every fixed set (by more
    than the tolerance); a refused candidate is deployed only with `force` and a reason. The
    cameras switch to the new file within seconds."""
    registry = _registry(services)
    if body.force and not (body.reason or "").strip():
        raise invalid("body", "reason", "a forced promotion needs a reason in words")
    try:
        gate = registry.promote(
            version, evaluate_on_set, actor=principal.name, tolerance=body.tolerance,
            force_reason=body.reason if body.force else None,
        )  # fmt: skip
    except PromotionRefusedError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    doc: dict[str, Any] = gate.to_json()
    return GatePublic(**doc, forced=not gate.passed)


@router.get("/api/models/shadow", response_model=dict[str, Any], responses={409: {}})
def get_shadow(_: ModelReader, services: ServicesDep) -> dict[str, Any]:
    """The shadow run's version and what it saw differently, per camera and in total."""
    return _registry(services).shadow_summary()


@router.put("/api/models/shadow", response_model=dict[str, Any], responses={404: {}, 409: {}})
def start_shadow(body: ShadowRequest, principal: ModelEditor, services: ServicesDep) -> dict[str, Any]:
    """Run a version beside the deployed model on every camera; it files nothing."""
    registry = _registry(services)
    registry.start_shadow(body.version, actor=principal.name)
    return registry.shadow_summary()


@router.delete("/api/models/shadow", status_code=status.HTTP_204_NO_CONTENT, responses={409: {}})
def stop_shadow(principal: ModelEditor, services: ServicesDep) -> None:
    """End the shadow run (its reports stay until the next one starts)."""
    _registry(services).stop_shadow(actor=principal.name)
