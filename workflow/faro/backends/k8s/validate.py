"""Offline validation of rendered objects.

- Core kinds (Namespace, ResourceQuota, ConfigMap, ServiceAccount, Role, RoleBinding,
  Deployment, Job, Lease): the Kubernetes OpenAPI schemas shipped by the
  ``kubernetes-validate`` package, strict mode (unknown fields are errors), at the newest
  Kubernetes version the package ships.
- KubeRay kinds (RayCluster, RayService): the ``openAPIV3Schema`` of the served ``v1``
  version inside KubeRay's CRD YAML files, checked with ``jsonschema``.  Like the API
  server, unknown fields are rejected where the CRD does not preserve them.

The CRD files are ~1 MB each: each is parsed once per process (``functools.cache``).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayService": "ray.io_rayservices.yaml"}
CRD_GROUP = "ray.io"


class ManifestError(ValueError):
    """A rendered object does not satisfy its schema."""


def crd_dir() -> Path:
    """Directory of KubeRay's CRD YAMLs: $FARO_KUBERAY_CRDS, else the shared data copy."""
    env = os.environ.get("FARO_KUBERAY_CRDS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data" / "kuberay-crds"
        if cand.is_dir():
            return cand
    raise FileNotFoundError("KubeRay's CRD files not found: set FARO_KUBERAY_CRDS to their folder "
                            "(../shared/data/kuberay-crds beside the project)")


def k8s_schema_version() -> str:
    """Newest Kubernetes version whose schemas ``kubernetes-validate`` ships (e.g. ``1.37.0``)."""
    from kubernetes_validate import utils

    return max(utils.all_versions(), key=lambda v: tuple(int(x) for x in v.split(".")))


def _structural(schema: Any) -> Any:
    """Close every object schema the way the API server prunes: properties without
    ``additionalProperties`` and without ``x-kubernetes-preserve-unknown-fields`` allow no
    other keys.  Makes a typo in a CRD field an error instead of a silently dropped field."""
    if isinstance(schema, list):
        return [_structural(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _structural(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind``'s served ``version`` from its CRD file (cached)."""
    path = crd_dir() / CRD_FILES[kind]
    with open(path) as fh:
        crd = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if crd["spec"]["group"] != CRD_GROUP or crd["spec"]["names"]["kind"] != kind:
        raise ManifestError(f"{path} is not the CRD of {CRD_GROUP} {kind}")
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            if not v.get("served", False):
                raise ManifestError(f"{kind} {version} is not served by {path}")
            return _structural(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
    raise ManifestError(f"{path} has no version {version}")


@functools.cache
def _crd_validator(kind: str, version: str) -> jsonschema.protocols.Validator:
    schema = crd_schema(kind, version)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, format_checker=None)


def _where(err: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in err.absolute_path) or "<root>"


def validate_crd_object(obj: Mapping[str, Any]) -> str:
    """Validate a ray.io object against its CRD schema; returns ``kind@version``."""
    group, _, version = obj["apiVersion"].partition("/")
    if group != CRD_GROUP:
        raise ManifestError(f"not a {CRD_GROUP} object: {obj['apiVersion']}")
    kind = obj["kind"]
    if kind not in CRD_FILES:
        raise ManifestError(f"no CRD file for {kind}")
    v = _crd_validator(kind, version)
    errors = sorted(v.iter_errors(dict(obj)), key=lambda e: list(e.absolute_path))
    if errors:
        msgs = "; ".join(f"{_where(e)}: {e.message}" for e in errors[:5])
        raise ManifestError(f"{kind} {obj['metadata'].get('name')}: {msgs}")
    name = obj["metadata"]["name"]
    if len(name) > 63:
        raise ManifestError(f"{kind} name {name!r} is longer than 63 characters")
    return f"{kind}@{version}"


def validate_core_object(obj: Mapping[str, Any], k8s_version: str | None = None) -> str:
    """Validate a built-in kind with ``kubernetes-validate`` (strict); returns ``kind@k8s-version``."""
    import kubernetes_validate

    version = k8s_version or k8s_schema_version()
    try:
        used = kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as e:
        raise ManifestError(f"{obj['kind']} {obj['metadata'].get('name')}: {e}") from e
    return f"{obj['kind']}@{used}"


def validate_object(obj: Mapping[str, Any], k8s_version: str | None = None) -> str:
    """Validate one object with the schema for its group; returns what it was checked against."""
    if obj.get("apiVersion", "").startswith(CRD_GROUP + "/"):
        return validate_crd_object(obj)
    return validate_core_object(obj, k8s_version)


def validate_all(objs: Iterable[Mapping[str, Any]], k8s_version: str | None = None) -> list[str]:
    """Validate every object; raises ManifestError naming the first invalid one."""
    return [validate_object(o, k8s_version) for o in objs]
