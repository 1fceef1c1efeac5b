"""A var/ left by an older `make run` is recognised at start and the user told in one line how to
start afresh, instead of meeting nondeterminism errors from histories the code cannot replay."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.stack.var_dir import MARK, VarFromAnotherVersion, claim
from workflows import versions

REPO = Path(__file__).resolve().parents[1]


def test_a_new_var_is_created_with_this_code_s_version(tmp_path):
    var = tmp_path / "var"
    claim(var)
    assert (var / MARK).read_text() == f"{versions.CURRENT}\n"
    claim(var)   # the same code again: nothing changes
    assert (var / MARK).read_text() == f"{versions.CURRENT}\n"


def test_a_var_from_before_the_versions_is_refused_naming_the_way_out(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "temporal.db").write_bytes(b"SQLite format 3\0")
    with pytest.raises(VarFromAnotherVersion) as refused:
        claim(var)
    assert str(refused.value) == (f"{var}/ was made by an older version (before 1.0): its workflows would not "
                                  f"replay on this code; move it away or run `rm -r {var}` to start afresh")
    assert not (var / MARK).exists()


def test_a_var_holding_only_mail_or_logs_is_taken(tmp_path):
    var = tmp_path / "var"
    (var / "mail").mkdir(parents=True)
    claim(var)
    assert (var / MARK).read_text() == f"{versions.CURRENT}\n"


def test_versions_this_code_replays_are_taken_and_the_newer_one_added(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / MARK).write_text("1.0\n")
    claim(var, current="1.2", oldest="1.0")
    assert (var / MARK).read_text().split() == ["1.0", "1.2"]


@pytest.mark.parametrize(("ran", "made_by"), [
    ("1.0\n1.1\n", "an older version (1.0; this code replays 1.1 to 1.2)"),
    ("1.3\n", "a newer version (1.3; this code is 1.2)"),
    ("1.1\n1.10\n", "a newer version (1.10; this code is 1.2)"),
    ("", "an older version (none named; this code replays 1.1 to 1.2)"),
])
def test_a_var_from_a_version_out_of_range_is_refused(tmp_path, ran, made_by):
    var = tmp_path / "var"
    var.mkdir()
    (var / MARK).write_text(ran)
    with pytest.raises(VarFromAnotherVersion, match=r"^" + str(var) + "/ was made by " + made_by.replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.")):
        claim(var, current="1.2", oldest="1.1")
    assert (var / MARK).read_text() == ran   # left as it was


def test_an_unreadable_mark_is_refused(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / MARK).write_text("one point oh\n")
    with pytest.raises(VarFromAnotherVersion, match="a version this code cannot tell"):
        claim(var)


def test_make_run_on_an_older_var_says_so_in_one_line_and_starts_nothing(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "billing.db").write_bytes(b"SQLite format 3\0")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "TEMPORAL_"))}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-m", "workers.stack.embedded"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "cannot start: var/ was made by an older version (before 1.0): its workflows would not replay on this "
        "code; move it away or run `make clean-var` to start afresh"]
    assert sorted(path.name for path in (tmp_path / "var").iterdir()) == ["billing.db"]   # nothing started or written
