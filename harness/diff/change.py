"""The one record every step after the snapshot speaks: a typed change of one subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERDICTS = ("break", "review", "info")


@dataclass
class Change:
    """A change of one subject in one aspect (kinds and subjects: docs/compat-rules.md).

    The diff step fills the facts; the policy step sets `verdict`, `waived` and `reason`.
    """

    aspect: str
    kind: str
    subject: str
    before: Any = None
    after: Any = None
    consumer: str | None = None
    #: facts the policy needs beyond before/after (e.g. {"epoch": [1, 0]}); not in reports
    detail: dict[str, Any] | None = None
    verdict: str = "info"
    waived: bool = False
    reason: str | None = None
    #: the root change that explains this one ({"aspect", "kind", "subject"}: harness.diff.causes);
    #: None until linked, and then it is the change itself
    cause: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's shape of a change (`consumer` only where the kind has one)."""
        # before/after are JSON values already: asdict's deep copy of them cost 40 us a change
        data: dict[str, Any] = {"aspect": self.aspect, "kind": self.kind, "subject": self.subject,
                                "before": self.before, "after": self.after}
        if self.consumer is not None:
            data["consumer"] = self.consumer
        data.update(verdict=self.verdict, waived=self.waived, reason=self.reason,
                    cause=self.cause or self.self_cause())
        return data

    def self_cause(self) -> dict[str, str]:
        """This change as a `cause` names it (a root cause's own cause)."""
        return {"aspect": self.aspect, "kind": self.kind, "subject": self.subject}

    @property
    def cause_key(self) -> tuple[str, str, str]:
        """The (aspect, kind, subject) of the root cause: the key reports group by."""
        c = self.cause or self.self_cause()
        return (c["aspect"], c["kind"], c["subject"])

    @property
    def blocking(self) -> bool:
        """An unwaived break: the only thing that fails the gate."""
        return self.verdict == "break" and not self.waived

    def sort_key(self) -> tuple[int, str, str, str]:
        """Breaks first, then review, then info; within a verdict by kind and subject."""
        rank = VERDICTS.index(self.verdict) if self.verdict in VERDICTS else 3
        return (rank, self.kind, self.subject, self.consumer or "")
