"""`hanota bench`: speed, memory and fleet figures measured in one run, as docs/benchmarks.md.

Each family module measures through the project's own code (the MicroPython agent, the
link emulator, the hub, sim boards) and returns a Section; report.py writes the markdown.
"""
