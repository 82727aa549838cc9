"""Appraisal policies: YAML loaded into pydantic models, judged against verified claims."""

from .appraise import appraise, appraise_failure, check_required_platforms
from .azure import AzurePolicy
from .load import load_policy, parse_policy
from .model import CommonPolicy, Policy
from .nvgpu import NvgpuPolicy
from .snp import SnpPolicy
from .software import SoftwarePolicy
from .tdx import TdxPolicy


def __getattr__(name: str) -> object:
    # derive_policy (policy init --from) is imported when asked for: verifying never needs it.
    if name == "derive_policy":
        from .derive import derive_policy

        return derive_policy
    raise AttributeError(f"module 'ccattest.policy' has no attribute {name!r}")


__all__ = [
    "AzurePolicy",
    "CommonPolicy",
    "NvgpuPolicy",
    "Policy",
    "SnpPolicy",
    "SoftwarePolicy",
    "TdxPolicy",
    "appraise",
    "appraise_failure",
    "check_required_platforms",
    "derive_policy",
    "load_policy",
    "parse_policy",
]
