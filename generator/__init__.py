"""Conficker C P2P detection pack: spec model, protocol codec, renderers, pcaps, CLI."""
