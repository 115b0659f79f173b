"""The docs target: one page per signature, an index, and suricata-update tuning examples
(pages.py, templates in templates/), with the example alerts a real engine wrote."""

from .pages import (
    EXAMPLE_REPORT_INTERVAL,
    UNSTABLE,
    Example,
    Examples,
    ExamplesError,
    examples_path,
    format_examples,
    read_examples,
    render_docs,
    stable,
    tuning_files,
)

__all__ = [
    "EXAMPLE_REPORT_INTERVAL",
    "UNSTABLE",
    "Example",
    "Examples",
    "ExamplesError",
    "examples_path",
    "format_examples",
    "read_examples",
    "render_docs",
    "stable",
    "tuning_files",
]
