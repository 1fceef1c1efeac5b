"""`make run`'s ports, checked before anything starts: a busy one stops the stack in one line
naming the port, what holds it (when this machine can tell) and the setting that moves it,
instead of a bind traceback from the SMTP capture or a dev server that exits behind a log file."""

import os
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Port:
    host: str
    number: int
    what: str     # what `make run` would serve there
    moved_by: str  # the setting or option that moves it


class PortBusy(Exception):
    pass


def check_free(ports: list[Port]) -> None:
    """PortBusy naming the first port something else listens on."""
    for port in ports:
        host = "127.0.0.1" if port.host == "localhost" else port.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no holder
            try:
                probe.bind((host, port.number))
            except OSError as err:
                held = holder(port.number)
                raise PortBusy(f"port {port.number} on {host} ({port.what}) is "
                               + (f"in use by {held}" if held else f"not available ({err.strerror})")
                               + f"; stop it, or use another port: {port.moved_by}") from None


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """`PID 1234 (temporal)`: the process listening on `port`, read from /proc (Linux); None
    when this machine does not say (another OS, or a process of another user)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            rows = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in (entry for entry in os.listdir(proc) if entry.isdigit()):
        try:
            for fd in os.listdir(proc / pid / "fd"):
                if os.readlink(proc / pid / "fd" / fd) in inodes:
                    name = (proc / pid / "comm").read_text().strip()
                    return f"PID {pid} ({name})"
        except OSError:
            continue
    return None
