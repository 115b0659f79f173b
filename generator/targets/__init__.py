"""Targets: each renders its files from the spec. suricata/ (rules and one Lua script per
engine), docs/ (a page per signature, tuning examples), release/ (the suricata-update
source); pack.py puts the rendered files of every target in one tree, common.py holds what
they all render with. A new engine family (e.g. Snort 3) is a new folder beside suricata/."""
