import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE / "lua"), str(HERE / "engine")]


def pytest_addoption(parser):
    parser.addoption(
        "--engine",
        action="append",
        default=[],
        help="run engine tests on this engine only (suricata7, suricata8)",
    )
