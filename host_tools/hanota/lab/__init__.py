"""A local labgrid lab of sim boards: coordinator, exporter hosts, places (docs/labgrid.md).

bridge   raw TCP endpoint per board port (console, HAN), kept across power cycles
power    the simplerest power switch (HTTP) of a host's boards
board    one board of a host: sim board + endpoints + outlet
config   DIR/lab.json layout, free ports, exporter YAML from boards/labgrid/exporter-sim.yaml
host     one host process: its boards, endpoints, switch and labgrid-exporter
client   labgrid-client calls against the lab's coordinator
up       Lab: the coordinator, the hosts and the places; `hanota lab up`
cli      `hanota lab` arguments
"""
