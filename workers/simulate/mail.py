"""The simulator's SMTP capture: a real SMTP server on loopback (aiosmtpd) that keeps, in
memory, what each simulated e-mail looked like when it arrived. The timeline shows an e-mail
only if this server received it."""

import socket
import threading
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller

_HEADERS = BytesHeaderParser()  # the headers are all the timeline needs; the body is not parsed


@dataclass(frozen=True)
class CapturedMail:
    message_id: str
    recipients: tuple[str, ...]
    template: str | None
    org: str | None
    subject: str | None


@dataclass
class _CaptureHandler:
    messages: list[CapturedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        message = _HEADERS.parsebytes(envelope.original_content or envelope.content)
        captured = CapturedMail(message_id=str(message.get("Message-ID", "")).strip(),
                                recipients=tuple(r.lower() for r in envelope.rcpt_tos),
                                template=message.get("X-Billing-Template"), org=message.get("X-Billing-Org"),
                                subject=message.get("Subject"))
        with self.lock:
            self.messages.append(captured)
        return "250 OK"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MailCapture:
    """Start with `start()`, stop with `stop()`; `port` is where the mailer must deliver."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.handler = _CaptureHandler()
        self.port = 0
        self._controller: Controller | None = None

    def start(self, attempts: int = 5) -> "MailCapture":
        last: Exception | None = None
        for _ in range(attempts):  # a port picked free may be taken before we bind it: try another
            self.port = _free_port(self.host)
            controller = Controller(self.handler, hostname=self.host, port=self.port)
            try:
                controller.start()
            except (OSError, RuntimeError) as err:
                last = err
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"could not start the SMTP capture server on {self.host}: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[CapturedMail]:
        with self.handler.lock:
            return list(self.handler.messages)

    def message_ids(self) -> set[str]:
        return {m.message_id for m in self.messages}
