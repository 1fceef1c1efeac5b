"""The reference mail platform receiver (tests/support/receiver.py) in a process of its own, for
the benches: `python bench/platform_receiver.py PORT SECRET OUT.json` serves until SIGTERM, then
writes every message it received (org, version, arrival time) to OUT.json. start_receiver()
starts it; delivery_figures() reads what it got against the versions the database made."""

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.receiver import Receiver  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def start_receiver():  # -> (the process, the Webhooks to give the worker, where it writes what it got)
    from domain.delivery import Endpoint, Webhooks
    from tests.support.http import free_port
    port, out = free_port(), Path(tempfile.mkdtemp()) / "received.json"
    process = subprocess.Popen([sys.executable, __file__, str(port), SECRET, str(out)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "ready"
    return process, Webhooks(endpoints=(Endpoint("platform", f"http://127.0.0.1:{port}/webhooks/billing",
                                                 (SECRET,)),)), out


def delivery_figures(db, received: Path, since: datetime) -> tuple[int, int, float | None]:
    """Messages received since `since`, versions made since then, and change -> delivered p99 (s):
    from a version's decision to the arrival of it or a later version of the org (the latest wins)."""
    from sqlalchemy import select
    from db.models import EntitlementVersion
    log = json.loads(received.read_text())["log"]
    with db.transaction() as session:
        versions = session.execute(select(EntitlementVersion.org_id, EntitlementVersion.version,
                                          EntitlementVersion.created_at)
                                   .where(EntitlementVersion.created_at >= since)).all()
    arrivals: dict[str, list[tuple[int, float]]] = {}
    for org_id, version, at, _ in log:
        arrivals.setdefault(org_id, []).append((version, at))
    latencies = [min(at for v, at in arrivals[org_id] if v >= version) - created.timestamp()
                 for org_id, version, created in versions
                 if any(v >= version for v, _ in arrivals.get(org_id, []))]
    delivered = sum(1 for _, _, at, _ in log if at >= since.timestamp())
    return delivered, len(versions), percentile(latencies, 99) if latencies else None


async def main(port: int, secret: str, out: Path) -> None:
    receiver = await Receiver(secret, port=port).up()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await receiver.down()
    out.write_text(json.dumps({"refused": receiver.refused,
                               "log": [[r.org_id, r.version, r.at, r.applied] for r in receiver.log]}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
