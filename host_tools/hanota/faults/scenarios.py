"""The fault classes of the campaign: what is broken on the line, the hub or the CH side,
and when. Rates are per frame (ber: per bit); positions are fractions of the OTA bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    faults: dict[str, Any] = field(default_factory=dict)  # hanota.link.faults.Faults kwargs
    pulls: tuple[tuple[float, float], ...] = ()  # (at share of the OTA bytes, seconds down)
    action: str | None = None  # "hub-restart" | "wfd-storm": done by transfer.py
    at: tuple[float, ...] = ()  # where the action fires, as shares of the OTA bytes sent
    hold_s: float = 0.0  # hub-restart: seconds down; wfd-storm: seconds of WAIT_FOR_DATA
    agent_config: dict[str, Any] = field(default_factory=dict)  # agent_config.json
    hub: dict[str, Any] = field(default_factory=dict)  # HubConfig overrides


_MIX = {"ber": 1e-5, "drop": 0.02, "dup": 0.02, "reorder": 0.02, "truncate": 0.02}

ALL = [
    Scenario("clean", "no fault (control)"),
    Scenario("ber-1e-5", "bit errors, 1e-5 per bit, both ways", {"ber": 1e-5}),
    Scenario("ber-1e-4", "bit errors, 1e-4 per bit (~20 % of block frames)", {"ber": 1e-4}),
    Scenario("drop-2%", "2 % of frames dropped, both ways", {"drop": 0.02}),
    Scenario("drop-10%", "10 % of frames dropped, both ways", {"drop": 0.10}),
    Scenario("dup-5%", "5 % of frames sent twice", {"dup": 0.05}),
    Scenario("reorder-5%", "5 % of frames held back behind the next one", {"reorder": 0.05}),
    Scenario("truncate-5%", "5 % of frames cut short (delimiter kept)", {"truncate": 0.05}),
    Scenario("mixed", "ber 1e-5 + 2 % each of drop, dup, reorder, truncate", _MIX),
    Scenario(
        "cable-pull", "cable pulled for 3 s at 30 % and at 70 %", pulls=((0.3, 3.0), (0.7, 3.0))
    ),  # fmt: skip
    Scenario(
        "cable-pull-long",
        "cable pulled 12 s at 50 % (mid-fragment): the agent abandons (max_retries 4), resumes itself",
        pulls=((0.5, 12.0),),
        agent_config={"max_retries": 4},
    ),
    Scenario(
        "wfd-storm",
        "hub answers WAIT_FOR_DATA (1 s) to every block request for 8 s at 30 %",
        action="wfd-storm",
        at=(0.3,),
        hold_s=8.0,
        hub={"meter_wait_s": 1},
    ),  # fmt: skip
    Scenario(
        "hub-restart",
        "hub stopped 2 s and restarted from its event log at 25 % and 60 %",
        action="hub-restart",
        at=(0.25, 0.6),
        hold_s=2.0,
    ),  # fmt: skip
]
BY_NAME = {s.name: s for s in ALL}
QUICK = ["mixed", "cable-pull", "wfd-storm", "hub-restart"]


def select(quick: bool, names: list[str] | None = None) -> list[Scenario]:
    if names:
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise ValueError(
                f"unknown fault class {', '.join(unknown)}; known: {', '.join(BY_NAME)}"
            )
        return [BY_NAME[n] for n in names]
    return [BY_NAME[n] for n in QUICK] if quick else list(ALL)
