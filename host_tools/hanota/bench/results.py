"""Figures, bars and sections: what every measurement family returns.

A Bar turns a figure into pass/miss and a margin; nothing here measures anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Bar:
    """A QUALITY.md bar: `value op limit` must hold (op is "<=" or ">=")."""

    op: str
    limit: float
    unit: str = ""
    label: str = ""  # e.g. "stretch"

    def text(self) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        extra = f" ({self.label})" if self.label else ""
        return f"{sign} {_num(self.limit)} {self.unit}".rstrip() + extra

    def passed(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def margin(self, value: float) -> str:
        """How far from the bar: '3.2× better' or 'misses by 18 %'."""
        if value <= 0 and self.op == "<=":
            return "passes"
        good = self.limit / value if self.op == "<=" else value / self.limit
        if good >= 1:
            return (
                f"passes, {good:.2f}× the bar" if self.op == ">=" else f"passes, {good:.2f}× under"
            )
        return f"misses by {(1 - good) * 100:.0f} %"


@dataclass
class Figure:
    key: str  # stable JSON key
    label: str
    value: float | None
    unit: str
    bar: Bar | None = None
    note: str = ""

    def status(self) -> str:
        if self.bar is None:
            return ""
        if self.value is None:
            return "pending"
        return "PASS" if self.bar.passed(self.value) else "MISS"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label, "value": self.value, "unit": self.unit}
        if self.bar is not None:
            d["bar"] = asdict(self.bar) | {"text": self.bar.text()}
            d["status"] = self.status()
            if self.value is not None:
                d["margin"] = self.bar.margin(self.value)
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class Section:
    """One measurement family's results."""

    name: str  # the --only name
    title: str
    method: str = ""  # markdown paragraph(s)
    command: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers for --json

    def add(self, *figs: Figure) -> None:
        self.figures.extend(figs)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "command": self.command,
            "figures": {f.key: f.to_json() for f in self.figures},
            "notes": self.notes,
            "pending": self.pending,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "data": self.data,
        }


def _num(x: float) -> str:
    return f"{x:g}"


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a table: 3 significant digits, or 'pending'."""
    if value is None:
        return "pending"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"
