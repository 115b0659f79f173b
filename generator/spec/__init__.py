"""The spec: spec/conficker-p2p.yaml loaded once into typed objects (model.py) by a
checked reader (load.py). With generator.codec, the bottom of the generator: the targets,
the traffic and the analyst commands import it; it imports nothing else of the generator."""

from .load import load, parse
from .model import (
    DEFAULT_SPEC,
    Block,
    Decoder,
    DecoderRule,
    Docs,
    EngineTarget,
    Options,
    Pack,
    Protocol,
    Rule,
    Side,
    Signature,
    Snort3Target,
    Spec,
    SpecError,
    rule_sid,
)

__all__ = [
    "DEFAULT_SPEC",
    "Block",
    "Decoder",
    "DecoderRule",
    "Docs",
    "EngineTarget",
    "Snort3Target",
    "Options",
    "Pack",
    "Protocol",
    "Rule",
    "Side",
    "Signature",
    "Spec",
    "SpecError",
    "load",
    "parse",
    "rule_sid",
]
