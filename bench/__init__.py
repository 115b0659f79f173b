"""`make bench`: what the Conficker P2P pack costs Suricata.

bench.inputs writes deterministic, cached pcaps (a realistic traffic mix, an adversarial
UDP flood, many short TCP sessions on high ports); bench.run runs every available engine
on each of them without rules and with the pack, alternating the arms, and writes
bench/RESULTS.md. Run it as `python -m bench` (see `python -m bench --help`).
"""
