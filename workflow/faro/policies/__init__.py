"""Autoscaling policies behind one interface (:class:`faro.policies.base.Policy`)."""

from faro.policies.base import Policy
from faro.policies.registry import BUILTIN, PolicyError, make_policy, policy_class

__all__ = ["BUILTIN", "Policy", "PolicyError", "make_policy", "policy_class"]
