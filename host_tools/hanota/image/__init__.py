"""`hanota image`: keys, build, inspect and verify signed, fragmentable OTA files.

The byte format is otaclient.image's (the board's own codec); keys and signing use
`cryptography`.
"""
