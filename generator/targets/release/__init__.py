"""The release target: the rendered pack as a reproducible suricata-update source (dist.py,
`python -m generator.targets.release.dist`, run by `make dist`)."""
