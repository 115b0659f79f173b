"""`make bench`: what the Conficker P2P pack costs Suricata 7, Suricata 8 and Snort 3.

The measure is a count of instructions on each engine's packet path (bench.count) under
callgrind, per arm (bench.arms) on a slice of each cached input (bench.inputs); beside it,
CPU time and peak RSS of whole runs (bench.timing) and the costliest single Lua call
(bench.worstcase). bench.budgets checks the budgets, bench.report writes bench/RESULTS.md,
bench.cli runs it all (`python -m bench --help`).
"""
