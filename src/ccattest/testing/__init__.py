"""Factories for valid and broken evidence, built from test roots made at run time.

Used by ccattest's own tests and benchmarks, and by anyone testing code that consumes
ccattest. Each platform adds a module here; nothing in it is used during verification.
"""

from .cases import BrokenCase
from .software import SoftwareFixture

__all__ = ["BrokenCase", "SoftwareFixture"]
