"""What every platform's appraisal shares: strict models and the appraisal ledger."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..result import Reason, TrustClaim, TrustVector
from ..text import human


class StrictModel(BaseModel):
    # Unknown keys are errors: a misspelt rule must never silently become "no rule".
    model_config = ConfigDict(extra="forbid", frozen=True)


class Appraisal:
    """Collects one reason per rule and the trust-vector value each rule implies."""

    def __init__(self) -> None:
        self.vector = TrustVector()
        self.reasons: list[Reason] = []

    def rule(self, check: str, passed: bool, message: str, *, claim: TrustClaim,
             ok: int, fail: int, expected: object = None, found: object = None) -> bool:
        self.vector = self.vector.with_value(claim, ok if passed else fail)
        self.reasons.append(Reason(check, passed, message, expected=_words(expected),
                                   found=_words(found)))
        return passed

    def extend(self, other: Appraisal) -> Appraisal:
        """This appraisal followed by another's rules (a platform judged by two sections)."""
        self.vector = self.vector.merged(other.vector)
        self.reasons.extend(other.reasons)
        return self

    def note(self, check: str, message: str, *, claim: TrustClaim, value: int,
             expected: object = None, found: object = None) -> None:
        """A finding that is neither pass nor fail by itself, e.g. a warning-tier value."""
        self.vector = self.vector.with_value(claim, value)
        self.reasons.append(Reason(check, False, message, expected=_words(expected),
                                   found=_words(found)))


def _words(value: object) -> str | None:
    # None means "nothing to show" (the reason omits it), not the word "none".
    return None if value is None else human(value)


def reference_rule(appraisal: Appraisal, measurement: str, references: list[str], *,
                   what: str = "measurement") -> None:
    """Executables: the measurement against the policy's reference values. With none
    configured there is nothing to compare with: a warning (AR4SI 33), not a failure."""
    if not references:
        appraisal.note("measurement", f"no reference measurements in the policy: the {what} "
                       "is unrecognized", claim=TrustClaim.EXECUTABLES, value=33,
                       expected="a reference measurement in the policy", found=measurement)
        return
    known = measurement in references
    appraisal.rule("measurement", known,
                   f"{what} matches {'a' if known else 'no'} reference value",
                   claim=TrustClaim.EXECUTABLES, ok=2, fail=96,
                   expected=f"one of {len(references)} reference values", found=measurement)
