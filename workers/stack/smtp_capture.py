"""The development SMTP server: accepts every message and saves it as a .eml file."""

import itertools
import logging
from pathlib import Path

from aiosmtpd.controller import Controller

log = logging.getLogger("billing.smtp")


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem.split("-")[0]) for p in folder.glob("*.eml") if p.stem.split("-")[0].isdigit()]
        self.counter = itertools.count(max(existing, default=0) + 1)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        number = next(self.counter)
        recipient = envelope.rcpt_tos[0].replace("@", "_at_") if envelope.rcpt_tos else "unknown"
        path = self.folder / f"{number:05d}-{recipient}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        log.info("mail to %s saved as %s", ", ".join(envelope.rcpt_tos), path)
        return "250 OK"


def start_capture(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(SaveToFolder(folder), hostname=host, port=port)
    controller.start()
    return controller
