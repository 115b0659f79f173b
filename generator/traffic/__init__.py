"""Test traffic (`cfp2p pcaps`): deterministic scenarios written as pcaps; pcaps.py is
the catalogue, packets.py the building blocks, one module per kind of scenario."""
