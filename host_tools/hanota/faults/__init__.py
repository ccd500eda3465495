"""Link fault campaign (QUALITY.md, Reliability: link faults; issue 6 part 2).

Real updates, sim boards running the MicroPython agent, the hub emulator in process,
each fault class injected between them; every transfer ends with the right bytes
or stops cleanly and resumes. `python -m hanota.faults [--quick] [--seed N] [--json]`.

scenarios.py  the fault classes (what to break, when)
rig.py        CampaignRig: RigHub plus relink (heal the line) and hub restart
transfer.py   one transfer: fresh board, submit, faults, heal/resume, outcome
readback.py   bytes wrong: the sim flash slot and the staged progress vs the image
campaign.py   the runs, concurrency, summary figures
cli.py        the command: table or one JSON document, last line the figures
"""
