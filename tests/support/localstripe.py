"""localstripe (a stateful fake Stripe server) as a real process on a free loopback port.

`python -m tests.support.localstripe PORT STORE` runs it with its state kept in STORE instead of
the one /tmp/localstripe.pickle every instance shares, so an instance stopped and started again
(an outage) finds its customers, and parallel test workers do not read each other's."""

import os
import pickle
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.http import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LocalStripe:
    store: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> "LocalStripe":
        self.log = self.log or self.store.with_suffix(".log")
        out = open(self.log, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.support.localstripe", str(self.port),
                                         str(self.store)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"localstripe exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/v1/customers", timeout=1)
            except urllib.error.HTTPError:
                return self   # it answers (401 without a key)
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("localstripe did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def register_webhook(self, url: str, secret: str) -> None:
        data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
        req = urllib.request.Request(f"{self.url}/_config/webhooks/billing", data=data, method="POST",
                                     headers={"Authorization": "Bearer sk_test_localstripe"})
        urllib.request.urlopen(req, timeout=5).read()


def _serve(port: int, store: Path) -> None:
    from localstripe import resources, server

    def dump_to_disk(self) -> None:  # noqa: ANN001
        tmp = store.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            pickle.dump(self, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, store)

    def try_load_from_disk(self) -> None:  # noqa: ANN001
        if store.exists():
            with open(store, "rb") as saved:
                self.update(pickle.load(saved))

    resources.Store.dump_to_disk = dump_to_disk
    resources.Store.try_load_from_disk = try_load_from_disk
    sys.argv = ["localstripe", "--port", str(port)]
    server.start()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
