"""Find a policy class by name: a built-in name, ``module:Class`` or ``path/to/file.py:Class``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BUILTIN: dict[str, str] = {
    "fairshare": "faro.policies.reactive:FairShare",
    "aiad": "faro.policies.reactive:AIAD",
    "oneshot": "faro.policies.reactive:Oneshot",
    "ai": "faro.policies.reactive:AI",
    "mark": "faro.policies.hybrid:MArk",
    "faro": "faro.policies.hybrid:Faro",
    # beyond the paper: the production autoscalers (faro.policies.production)
    "ray_serve_default": "faro.policies.production:RayServeDefault",
    "k8s_hpa": "faro.policies.production:K8sHPA",
    "knative_kpa": "faro.policies.production:KnativeKPA",
}


class PolicyError(ValueError):
    pass


def policy_class(spec: str, base_dir: str | Path | None = None) -> type:
    """Resolve ``spec`` to a class (no instance yet); errors name the spec."""
    target = BUILTIN.get(spec, spec)
    if ":" not in target:
        raise PolicyError(
            f"unknown policy class {spec!r}: use a built-in name ({', '.join(sorted(BUILTIN))}), "
            "'package.module:Class' or 'path/to/file.py:Class'"
        )
    mod_name, _, cls_name = target.rpartition(":")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise PolicyError(f"policy {spec!r}: file {path} not found")
        name = f"faro_user_policy_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(name)
        if module is None:
            sp = importlib.util.spec_from_file_location(name, path)
            assert sp is not None and sp.loader is not None
            module = importlib.util.module_from_spec(sp)
            sys.modules[name] = module
            sp.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:
            raise PolicyError(f"policy {spec!r}: cannot import module {mod_name!r}: {e}") from None
    try:
        cls = getattr(module, cls_name)
    except AttributeError:
        raise PolicyError(f"policy {spec!r}: module {mod_name!r} has no class {cls_name!r}") from None
    if not callable(getattr(cls, "decide", None)) and not callable(getattr(cls, "layers", None)):
        raise PolicyError(f"policy {spec!r}: {cls_name} has neither decide() nor layers()")
    return cls


def make_policy(
    spec: str,
    params: Mapping[str, Any] | None,
    *,
    jobs: Sequence[str],
    quota: int,
    base_dir: str | Path | None = None,
    context: Mapping[str, Any] | None = None,
):
    """Instantiate a policy for one run; ``context`` (unit_time, data_dir, trace counts...)
    is handed to its ``bind()`` if it has one."""
    cls = policy_class(spec, base_dir)
    policy = cls(dict(params or {}), jobs=list(jobs), quota=int(quota))
    if context is not None and callable(getattr(policy, "bind", None)):
        policy.bind(context)
    return policy
