"""The `temporal` CLI the tests start dev servers with."""

import os

import pytest

from workers.runtime.binaries import temporal_cli


def temporal_cli_or_skip() -> str:
    """Its path; in CI its absence fails the test (CI must run every test), elsewhere it skips."""
    try:
        return temporal_cli()
    except FileNotFoundError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the temporal CLI is required in CI: {err}")
        pytest.skip(str(err))
