"""What `hanota board provision|flash|deploy` do, below the thin commands of cli.py.

Each action checks everything first (board, port, flash encryption, firmware, production
door), then either prints the exact command lines (dry run) or runs them: esptool and
espefuse via flash.py, mpremote via deploy.py, a sim board via simboard.py.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..output import CommandError, log, plan
from . import deploy, flash, monitor, provision, simboard
from .options import FlashOptions, IdentityOptions, ProvisionOptions

SIM_CONSOLE = "<sim-console-pty>"  # placeholder in dry runs: the pty exists once the sim runs
BOOT_WAIT_S = 3.0  # after esptool's hard reset: MicroPython boots and formats its filesystem


def make_identity(board: dict[str, Any], opts: IdentityOptions,
                  seed: str | None = None) -> provision.Identity:  # fmt: skip
    """A new identity from `opts`; `seed` is the action's own when opts has none."""
    anchors = list(opts.trust)
    if not anchors:
        anchors = [provision.dev_trust_anchor()]
        log(f"provision: no --trust given: using the development key {anchors[0]}")
    ident = provision.make_identity(
        board,
        eui64=opts.eui64,
        seed=opts.seed if opts.seed is not None else seed,
        short_addr=opts.short_addr,
        ch_addr=opts.ch_addr,
        suppliers=list(opts.suppliers) or None,
        anchors=anchors,
        authority=list(opts.authority),
    )
    if opts.heap_report:
        from hanota.rig.heap import with_report

        ident.agent_config = with_report(None)
    return ident


def finish_record(
    ident: provision.Identity, board: dict[str, Any], out: Path | None
) -> dict[str, Any]:
    record = provision.device_record(ident, board)
    path = out or provision.default_record_path(ident)
    provision.write_record(path, record)
    log(f"provision: device record {path} (eui64 {record['eui64']}, key id {record['key_id']})")
    shown = {k: v for k, v in record.items() if k != "link_key"}  # a secret: in the file only
    return {**shown, "record": str(path)}


def push_store(ident: provision.Identity, port: str, sim: bool, dry_run: bool) -> float:
    """identity.json + trust.json to :/data/ over mpremote; returns seconds."""

    def go(tmp: Path) -> float:
        provision.write_dir(tmp, provision.store_files(ident))
        cmds = deploy.provision_cmds(port, tmp, sim)
        if dry_run:
            deploy.show(cmds)
            return 0.0
        return deploy.run(cmds, "provision")

    return deploy.with_private_dir(go)


def push_agent(board: dict[str, Any], port: str, sim: bool, dry_run: bool,
               on_board: dict[str, bytes] | None = None) -> float:  # fmt: skip
    """The agent tree + board.json to the board's filesystem; returns seconds. With
    on_board (a sim's running slot), only files that differ from it (deploy.stage)."""
    from .defs import path_of

    staged, names = deploy.stage(board, path_of(board["name"]), on_board)
    cmds = deploy.deploy_cmds(port, staged, names, sim, clean=on_board is not None)
    if dry_run:
        deploy.show(cmds)
        return 0.0
    n = sum(1 for p in staged.rglob("*") if p.is_file())
    same = (
        f" ({len(deploy.agent_files(board)) + 1 - n} already in the running slot)"
        if on_board
        else ""
    )
    log(f"deploy: {n} files from {staged} to {port}{same}")
    return deploy.run(cmds, "deploy")


def provision_to(board: dict[str, Any], opts: ProvisionOptions) -> dict[str, Any]:
    """`board provision`: to --store-dir, --port or --sim; then the device record."""
    if opts.port or opts.sim:
        deploy.refuse_production(board, "provisioning")
    ident = make_identity(board, opts.identity)
    target: str | Path
    if opts.store_dir:
        target = opts.store_dir
        if opts.dry_run:
            plan(f"write {opts.store_dir / 'identity.json'} {opts.store_dir / 'trust.json'}")
        else:
            provision.write_dir(opts.store_dir, provision.store_files(ident))
    elif opts.port:
        target = opts.port
        if not opts.dry_run:
            flash.check_port(opts.port)
        with monitor.handed_over(opts.port):
            check_encryption(board, opts.port, opts.dry_run, True)
            push_store(ident, opts.port, False, opts.dry_run)
    elif opts.sim:
        target = opts.sim
        _on_sim(opts.sim, opts.dry_run, lambda pty: push_store(ident, pty, True, opts.dry_run))
    else:
        raise CommandError("provision needs a target: --store-dir, --port or --sim")
    if opts.dry_run:
        return {"dry_run": True, "target": str(target), "eui64": ident.eui64.hex()}
    return {**finish_record(ident, board, opts.identity.record), "target": str(target)}


def check_encryption(board: dict[str, Any], port: str, dry_run: bool, settle: bool) -> None:
    """Refuse a board with flash encryption on before anything is written (flash.py reads the
    eFuses with espefuse, which resets the chip: with `settle`, wait for MicroPython to boot
    again before mpremote talks to it)."""
    if board["kind"] != "esp32":
        return
    if dry_run:
        plan(shlex.join(flash.espefuse_cmd(board, port)))
        return
    bits = flash.check_encryption(board, port)
    log(f"efuse: {flash.CRYPT_CNT[board['chip']]} has {bits} bits set: flash encryption off")
    if settle:
        time.sleep(BOOT_WAIT_S)


def _on_sim(directory: Path, dry_run: bool, work: Callable[[str], Any]) -> Any:
    if dry_run:
        return work(SIM_CONSOLE)
    with simboard.running(directory) as sb:
        return work(sb.console_path)


def flash_real(board: dict[str, Any], opts: FlashOptions) -> dict[str, Any]:
    """esptool writes MicroPython; then deploy the agent and provision over mpremote."""
    deploy.refuse_production(board, "flashing, provisioning and deploy")
    if not opts.port or not opts.firmware:
        raise CommandError(
            f"flashing the real board {board['name']!r} needs a serial port and a firmware file: "
            f"make flash BOARD={board['name']} PORT=/dev/ttyUSB0 FIRMWARE=<{board['micropython']['firmware']}>.bin"
        )
    fw = opts.firmware
    facts = flash.check_firmware(board, fw) if (fw.exists() or not opts.dry_run) else {}
    if not opts.dry_run:
        flash.check_port(opts.port)
    cmd = flash.esptool_cmd(board, opts.port, fw, opts.baud)
    ident = make_identity(board, opts.identity)
    if opts.dry_run:
        check_encryption(board, opts.port, True, False)
        plan(shlex.join(cmd))
        push_agent(board, opts.port, False, True)
        push_store(ident, opts.port, False, True)
        deploy.show([deploy.reset_cmd(opts.port)])
        return {"dry_run": True, **facts}
    with monitor.handed_over(opts.port):
        t0 = time.monotonic()
        check_encryption(board, opts.port, False, False)
        log(f"flash: {shlex.join(cmd)}")
        if subprocess.run(cmd).returncode != 0:
            raise CommandError(
                "flash: esptool failed (see its output above); nothing else was done"
            )
        time.sleep(BOOT_WAIT_S)
        deploy_s = push_agent(board, opts.port, False, False)
        provision_s = push_store(ident, opts.port, False, False)
        deploy.run([deploy.reset_cmd(opts.port)], "reset")
    return {**finish_record(ident, board, opts.identity.record), **facts, "deploy_s": round(deploy_s, 2),
            "provision_s": round(provision_s, 2), "total_s": round(time.monotonic() - t0, 2)}  # fmt: skip


def flash_sim(board: dict[str, Any], opts: FlashOptions) -> dict[str, Any]:
    """Create (or reuse) build/sim/<board>/, start it, deploy + provision, stop it."""
    directory = opts.sim_dir or simboard.sim_dir(board)
    seed = (
        f"sim:{board['name']}:{directory.resolve()}"  # same identity each time this sim is flashed
    )
    ident = make_identity(board, opts.identity, seed=seed)
    if opts.dry_run:
        if not (directory / "flash.bin").exists():
            plan(shlex.join(["hanota", "sim", "create", str(directory), "--board", board["name"]]))
        slot = simboard.slot_files(directory)
        push_agent(board, SIM_CONSOLE, True, True, slot)
        push_store(ident, SIM_CONSOLE, True, True)
        return {"dry_run": True, "sim_dir": str(directory)}
    simboard.ensure_created(board, directory)
    slot = simboard.slot_files(directory)
    with simboard.running(directory) as sb:
        deploy_s = push_agent(board, sb.console_path, True, False, slot)
        provision_s = push_store(ident, sb.console_path, True, False)
    log(f"flash: {board['name']} deployed in {deploy_s:.1f} s, provisioned in {provision_s:.1f} s")
    record = opts.identity.record or directory / "device.json"
    return {**finish_record(ident, board, record), "sim_dir": str(directory),
            "deploy_s": round(deploy_s, 2), "provision_s": round(provision_s, 2)}  # fmt: skip


def deploy_to(
    board: dict[str, Any], port: str | None, dry_run: bool, sim_dir: str | None = None
) -> dict[str, Any]:
    """Redeploy the agent only: to --port, or to the sim board build/sim/<board>/."""
    deploy.refuse_production(board, "deploy")
    if port is None and board["kind"] == "sim":
        directory = Path(sim_dir) if sim_dir else simboard.sim_dir(board)
        if not dry_run and not (directory / "flash.bin").exists():
            raise CommandError(
                f"no sim board in {directory}: run 'make flash BOARD={board['name']}' first"
            )
        slot = simboard.slot_files(directory)
        secs = _on_sim(directory, dry_run, lambda pty: push_agent(board, pty, True, dry_run, slot))
        return {"target": str(directory), "deploy_s": round(secs, 2), "dry_run": dry_run}
    if port is None:
        raise CommandError(f"deploy to the real board {board['name']!r} needs PORT=<serial port>")
    if not dry_run:
        flash.check_port(port)
    with monitor.handed_over(port):
        secs = push_agent(board, port, board["kind"] == "sim", dry_run)
    return {"target": port, "deploy_s": round(secs, 2), "dry_run": dry_run}
