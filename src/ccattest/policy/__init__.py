"""Appraisal policies: YAML loaded into pydantic models, judged against verified claims."""

from .appraise import appraise, appraise_failure, check_required_platforms
from .azure import AzurePolicy
from .derive import derive_policy
from .load import load_policy, parse_policy
from .model import CommonPolicy, Policy
from .nvgpu import NvgpuPolicy
from .snp import SnpPolicy
from .software import SoftwarePolicy
from .tdx import TdxPolicy

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
