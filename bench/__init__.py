"""`make bench`: what the Conficker P2P pack costs Suricata (and Snort 3, bench.snort).

bench.inputs writes deterministic, cached pcaps (a realistic traffic mix, an adversarial
UDP flood, many short TCP sessions on high ports); bench.cli runs every available engine
on each of them without rules and with the pack, alternating the arms (bench.arms,
bench.runner, bench.stats), counts the pack's Lua outside Suricata (bench.luacount,
bench.worstcase), checks the budgets (bench.budgets) and writes bench/RESULTS.md
(bench.report; bench.replay saves a run to render it again). Run it as `python -m bench`
(see `python -m bench --help`).
"""
