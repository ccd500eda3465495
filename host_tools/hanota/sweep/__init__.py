"""The power-cut sweep (QUALITY.md, Reliability): cut power at every flash operation of a
clean fragmented update on the simulated board running the real MicroPython agent, boot
again, let the update finish or stop, and check the invariants.

| module | does |
|---|---|
| `updates.py` | the swept updates (images, start states) and what each expects |
| `cutrun.py` | one run in a worker process: `hanota rig update` with its cuts, the facts |
| `invariants.py` | the QUALITY.md invariants over one run's facts |
| `plan.py` | the reference run's op map (phases) -> the cut cases to try |
| `pool.py` | runs cases on a few boards at once, progress on stderr |
| `report.py` | totals, the JSON document and the last line |
| `__main__.py` | `python -m hanota.sweep` |
"""
