"""Conficker C P2P detection pack: the generator. spec/ and codec.py at the bottom;
targets/ (Suricata rules and scripts, docs, release), traffic/ (test pcaps) and analysis/
(analyst commands) above them; cli.py (`cfp2p`) on top."""
