"""The Suricata target: one rules file for Suricata 7 and 8 (rules.py), one Lua decoder
script per engine (lua.py, templates in templates/lua/), and the rev lock the rules'
revs come from (lock.py; revs.py is `make rules`' command that writes it)."""
