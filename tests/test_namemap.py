"""The device build's name map (hanota.namemap): written with every build, and console
text read back through it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from hanota import mpycross, namemap
from hanota.paths import micropython

NMAP = namemap.build(
    {
        "otaclient.download": {"_chunk": "_c", "_pump": "_b", "_q": "_a"},
        "otaclient.client": {"_crc": "_c", "_tick": "_b"},
        "otaclient.link": {"_crc": "_c"},
    },
    {
        "otaclient.download": [("_b", {"lookup_key": "a"}), ("reset", {"send": "a"}),
                               ("reset", {"sink": "a"})],
    },
)  # fmt: skip

TRACE = (
    "agent: crashed: AttributeError(\"'Download' object has no attribute '_c'\",); restart\r\n"
    "Traceback (most recent call last):\r\n"
    '  File "otaclient.client", line 40, in _b\r\n'
    '  File "otaclient.download", line 80, in _b\r\n'
    "AttributeError: 'Download' object has no attribute '_c'\r\n"
)


def test_the_map_reads_short_to_original_per_module_and_kind():
    mods = NMAP["modules"]
    assert NMAP["format"] == namemap.FORMAT
    assert mods["otaclient.download"]["private"] == {"_a": "_q", "_b": "_pump", "_c": "_chunk"}
    assert mods["otaclient.download"]["param"] == {"_b": {"a": ["lookup_key"]},
                                                   "reset": {"a": ["send", "sink"]}}  # fmt: skip
    assert "param" not in mods["otaclient.client"]


def test_a_traceback_is_read_in_its_frames_modules():
    out = namemap.translate(TRACE, NMAP).splitlines()
    assert out[2] == '  File "otaclient.client", line 40, in _b (_tick)'
    assert out[3] == '  File "otaclient.download", line 80, in _b (_pump)'
    # the innermost frame's module decides, not client's _c
    assert out[4] == "AttributeError: 'Download' object has no attribute '_c' (_chunk)"
    # the agent's crash line just before the traceback: the same frames
    assert "'_c' (_chunk)\"" in out[0]
    assert namemap.translate(TRACE, NMAP).count("\r\n") == 5  # line endings kept


def test_a_line_without_a_traceback_lists_what_the_name_may_be():
    assert namemap.translate("x: '_a'\n", NMAP) == "x: '_a' (_q)\n"  # one module has it
    got = namemap.translate("x: '_c'\n", NMAP)
    assert got == (
        "x: '_c' (otaclient.client:_crc | otaclient.download:_chunk | otaclient.link:_crc)\n"
    )
    many = namemap.build({f"m{i}": {f"_n{i}": "_c"} for i in range(5)}, {})
    assert namemap.translate("x: '_c'\n", many) == "x: '_c' (? 5 modules)\n"
    # bare names and unquoted text outside a traceback stay as they are
    assert namemap.translate("_c and a and 'zz'\n", NMAP) == "_c and a and 'zz'\n"


def test_parameters_are_read_only_quoted_in_the_innermost_function():
    trace = (
        "Traceback (most recent call last):\n"
        '  File "otaclient.download", line 9, in _b\n'
        "TypeError: unexpected keyword argument 'a' in a call\n"
    )
    last = namemap.translate(trace, NMAP).splitlines()[-1]
    assert last == "TypeError: unexpected keyword argument 'a' (lookup_key) in a call"
    reset = trace.replace("in _b", "in reset")
    assert "'a' (send | sink)" in namemap.translate(reset, NMAP)


def test_annotations_are_not_read_again_and_unknown_modules_stay():
    loop = namemap.build({"m": {"_b": "_a", "_zz": "_b"}}, {})
    trace = 'Traceback (most recent call last):\n  File "m", line 1, in f\nE: _a _b\n'
    assert namemap.translate(trace, loop).splitlines()[-1] == "E: _a (_b) _b (_zz)"
    other = "Traceback (most recent call last):\n  File \"<stdin>\", line 1, in _b\nE: '_c'\n"
    assert namemap.translate(other, NMAP) == other
    path = TRACE.replace('"otaclient.download"', '"/rom/otaclient/download.mpy"')
    assert "in _b (_pump)" in namemap.translate(path, NMAP)


MODULE = b'''"""A module the device build shortens."""


class Meter:
    def __init__(self, reading):
        self._field_reading = reading

    def _field_scaled(self, factor):
        return self._field_scale * factor + self._field_reading


def read(meter, factor):
    return meter._field_scaled(factor)
'''


def test_a_device_build_writes_its_map_and_micropython_tracebacks_read_back(tmp_path: Path):
    tree = mpycross.compile_tree([("fieldmod.py", MODULE)])
    (tmp_path / "fieldmod.mpy").write_bytes(dict(tree)["fieldmod.mpy"])
    nmap = namemap.load(mpycross.namemap_path(tree))
    assert json.loads(namemap.dumps(nmap)) == nmap
    short = {v: k for k, v in nmap["modules"]["fieldmod"]["private"].items()}
    res = subprocess.run(
        [micropython(), "-c", "import fieldmod\nfieldmod.read(fieldmod.Meter(3), 2)"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env=dict(os.environ, MICROPYPATH=""),
    )  # fmt: skip
    console = res.stdout + res.stderr  # the unix port prints the traceback on stdout
    raw = console.splitlines()
    assert res.returncode == 1 and raw[-1] == (
        f"AttributeError: 'Meter' object has no attribute '{short['_field_scale']}'"
    ), console  # the board names the short name only
    out = namemap.translate(console, nmap).splitlines()
    assert out[-1] == raw[-1] + " (_field_scale)"
    assert out[-2] == raw[-2] + " (_field_scaled)" and raw[-2].endswith(short["_field_scaled"])


def test_board_monitor_reads_a_traceback_back(tmp_path: Path):
    from test_board_monitor import HANOTA, wait_for

    (tmp_path / "map.json").write_text(namemap.dumps(NMAP))
    master, slave = os.openpty()
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            [HANOTA, "board", "monitor", "--port", os.ttyname(slave),
             "--namemap", str(tmp_path / "map.json")],
            stdin=subprocess.PIPE, stdout=fo, stderr=fe,
        )  # fmt: skip
    try:
        wait_for(err, "short names read back with")
        os.write(master, TRACE.encode())
        got = wait_for(out, "(_chunk)\n")  # read as text: "\r\n" reads "\n"
        assert got == namemap.translate(TRACE, NMAP).replace("\r\n", "\n"), got
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
        os.close(slave)


def test_the_rig_logs_the_agents_crashes_read_back():
    from hanota.rig.console import crash_lines

    text = "boot\r\nheap: idle=100\r\n" + TRACE + "agent: up\r\n"
    assert crash_lines(text, NMAP) == namemap.translate(TRACE, NMAP).splitlines()
    assert crash_lines("agent: crashed: MemoryError(); restart in 1000 ms\n", NMAP) == [
        "agent: crashed: MemoryError(); restart in 1000 ms"
    ]
    assert crash_lines("boot\nheap: idle=100\n", NMAP) == []
