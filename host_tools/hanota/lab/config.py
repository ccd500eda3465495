"""The lab's layout (DIR/lab.json) and each host's labgrid exporter config.

Ports are chosen free once and kept in DIR/lab.json: a host restarted on the same DIR
listens where it did, and a lab started again on a DIR laid out the same way (boards,
hosts, board name) takes the same ports and board directories back when they are free.
Boards go round-robin over the hosts: board n (from 1) to host ((n - 1) mod M) + 1.

lab.json (integers are JSON numbers):
    {"coordinator": "127.0.0.1:PORT", "board": NAME, "factory_version": INT,
     "hosts": [{"name": "host1", "pid": INT|null, "exporter_pid": INT|null,
                "power_port": INT, "power": URL_TEMPLATE, "config": PATH,
                "places": [PLACE, ...]}, ...],
     "places": {PLACE: {"host": "host1", "board_dir": PATH, "console": "socket://...",
                        "han": "socket://...", "power": URL_TEMPLATE, "index": INT,
                        "console_port": INT, "han_port": INT}}}
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from string import Template
from typing import Any

from ..paths import BOARDS
from .power import template

ADDRESS = "127.0.0.1"
LAB_JSON = "lab.json"
EXPORTER_TEMPLATE = BOARDS / "labgrid" / "exporter-sim.yaml"


def place_name(board: str, n: int) -> str:
    return f"{board}-{n}"


def host_name(k: int) -> str:
    return f"host{k}"


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on ADDRESS now (all held open while choosing)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((ADDRESS, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ADDRESS, port))
        except OSError:
            return False
    return True


def plan(directory: Path, boards: int, hosts: int, board: str, factory_version: int) -> dict:
    """The layout for DIR: the one in DIR/lab.json when it has the same shape and its
    ports are all free, else a new one."""
    directory = Path(directory).resolve()
    old = load(directory)
    if (
        old is not None
        and _same_shape(old, boards, hosts, board)
        and all(_bindable(p) for p in ports_of(old))
    ):
        old["factory_version"] = factory_version
        return old
    ports = iter(free_ports(1 + hosts + 2 * boards))
    layout: dict[str, Any] = {
        "coordinator": f"{ADDRESS}:{next(ports)}",
        "board": board,
        "factory_version": factory_version,
        "hosts": [],
        "places": {},
    }
    for k in range(1, hosts + 1):
        power_port = next(ports)
        layout["hosts"].append({
            "name": host_name(k), "pid": None, "exporter_pid": None,
            "power_port": power_port, "power": template(power_port, ADDRESS),
            "config": str(directory / "hosts" / host_name(k) / "exporter.yaml"), "places": [],
        })  # fmt: skip
    for n in range(1, boards + 1):
        host = layout["hosts"][(n - 1) % hosts]
        name = place_name(board, n)
        console, han = next(ports), next(ports)
        layout["places"][name] = {
            "host": host["name"], "board_dir": str(directory / "boards" / name),
            "console": f"socket://{ADDRESS}:{console}", "han": f"socket://{ADDRESS}:{han}",
            "power": host["power"], "index": len(host["places"]),
            "console_port": console, "han_port": han,
        }  # fmt: skip
        host["places"].append(name)
    return layout


def _same_shape(layout: dict, boards: int, hosts: int, board: str) -> bool:
    names = [place_name(board, n) for n in range(1, boards + 1)]
    return (layout.get("board") == board and len(layout.get("hosts", [])) == hosts
            and list(layout.get("places", {})) == names)  # fmt: skip


def ports_of(layout: dict) -> list[int]:
    ports = [int(layout["coordinator"].rsplit(":", 1)[1])]
    ports += [h["power_port"] for h in layout["hosts"]]
    for p in layout["places"].values():
        ports += [p["console_port"], p["han_port"]]
    return ports


def load(directory: Path) -> dict | None:
    path = Path(directory) / LAB_JSON
    if not path.is_file():
        return None
    with contextlib.suppress(ValueError, OSError):
        return json.loads(path.read_text())
    return None


def save(directory: Path, layout: dict) -> None:
    """Replace DIR/lab.json atomically (a reader never sees half a file)."""
    path = Path(directory) / LAB_JSON
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(layout, indent=2) + "\n")
    os.replace(tmp, path)


def host_entry(layout: dict, name: str) -> dict:
    for host in layout["hosts"]:
        if host["name"] == name:
            return host
    raise KeyError(f"no host {name!r} in the lab's layout")


def exporter_yaml(layout: dict, host: str) -> str:
    """The exporter config of `host`: boards/labgrid/exporter-sim.yaml once per board,
    its "##" comment lines left out."""
    block = Template("".join(
        line for line in EXPORTER_TEMPLATE.read_text().splitlines(keepends=True)
        if not line.startswith("##")
    ))  # fmt: skip
    out = [f"## written by hanota lab for {host}: one group per board (the place's name)\n"]
    for name in host_entry(layout, host)["places"]:
        p = layout["places"][name]
        out.append(block.substitute(
            place=name, address=ADDRESS, console_port=p["console_port"],
            han_port=p["han_port"], power_url=p["power"], index=p["index"],
        ))  # fmt: skip
    return "".join(out)
