"""The SMTP mail catcher for the demo and the tests: every mail received is stored as ``<folder>/<name>.eml``.

The SMTP dialogue is aiosmtpd's; this module adds only what the catcher does with a message: store it atomically
with its envelope as ``X-Envelope-From`` / ``X-Envelope-To`` headers. It relays nothing, listens on loopback only
and refuses a message over ``max_bytes`` with 552, both when the client announces the size (``MAIL FROM ...
SIZE=``) and while the data arrives: aiosmtpd stops keeping the data once the limit is passed, so an oversize
message is never held in memory whole.

    python -m flows.mailcatcher --out .data/mail       # port: DOCCLASS_SMTP_PORT, where notifications are sent
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import ipaddress
import itertools
import logging
import os
import signal
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
LOOPBACK = "127.0.0.1"


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address, else ValueError: the catcher accepts mail from this machine only."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"mail catcher host {host!r}: expected a loopback address (127.0.0.1, ::1 or localhost)"
        )
    return host


class StoreHandler:
    """aiosmtpd handler: writes each accepted message to ``out_dir`` as one ``.eml`` file."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self._counter = itertools.count(1)

    def store(self, data: bytes, mail_from: str, rcpt: list[str]) -> Path:
        """Write one message with its envelope; readers never see half a file."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._counter):04d}.eml"
        envelope = f"X-Envelope-From: {mail_from}\r\nX-Envelope-To: {', '.join(rcpt)}\r\n".encode()
        tmp = self.out_dir / f".{name}.tmp"
        tmp.write_bytes(envelope + data)
        target = self.out_dir / name
        os.replace(tmp, target)
        logger.info("stored mail from %s to %s as %s", mail_from, rcpt, target)
        return target

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.store(envelope.original_content or b"", envelope.mail_from or "", list(envelope.rcpt_tos))
        return "250 OK stored"


class _Controller(Controller):
    """aiosmtpd's threaded controller that also serves on port 0 (a free port, read back after binding)."""

    def _create_server(self) -> Any:
        return self._bind(super()._create_server())

    async def _bind(self, creating: Any) -> asyncio.AbstractServer:
        server: asyncio.AbstractServer = await creating
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return server


class MailCatcher:
    """SMTP server storing each message under ``out_dir``, in a background thread (also a context manager).

    Args:
        out_dir: folder for the ``.eml`` files (created on the first mail).
        host: a loopback address.
        port: 0 picks a free port; read it from :attr:`port` after :meth:`start`.
        max_bytes: largest message accepted; bigger ones get ``552``.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(
        self, out_dir: Path, host: str = LOOPBACK, port: int = 0, max_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self.handler = StoreHandler(out_dir)
        self.host = check_loopback(host)
        self._controller = _Controller(
            self.handler,
            hostname=self.host,
            port=port,
            server_hostname="localhost",  # aiosmtpd would otherwise ask DNS for this machine's name
            data_size_limit=max_bytes,
            ready_timeout=10.0,
        )

    @property
    def out_dir(self) -> Path:
        return self.handler.out_dir

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> MailCatcher:
        """Listen in a daemon thread; returns once the server answers.

        Raises:
            OSError: the port cannot be bound (in use, no permission).
        """
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop a catcher started with :meth:`start`."""
        self._controller.stop(no_assert=True)

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then close the port."""
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.start()
        logger.info(
            "mail catcher on %s:%s, mails -> %s (up to %d bytes each)",
            self.host,
            self.port,
            self.out_dir,
            self._controller.SMTP_kwargs["data_size_limit"],
        )
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_mails(out_dir: Path) -> list[EmailMessage]:
    """Stored mails, oldest first."""
    if not Path(out_dir).is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(Path(out_dir).glob("*.eml"))
    ]


def default_port() -> int:
    """The port notifications are sent to (``DOCCLASS_SMTP_PORT``), so the catcher listens where they arrive."""
    from flows.settings import Settings

    return Settings().smtp_port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="SMTP catcher on loopback: stores every mail as a .eml file."
    )
    parser.add_argument("--host", default=LOOPBACK, help="a loopback address")
    parser.add_argument("--port", type=int, help="default: DOCCLASS_SMTP_PORT (where notifications are sent)")
    parser.add_argument("--out", type=Path, default=Path(".data/mail"))
    parser.add_argument("--max-bytes", type=int, default=MAX_MESSAGE_BYTES, help="largest message accepted")
    parser.add_argument(
        "--print-port", action="store_true", help="print the port it would listen on and exit"
    )
    args = parser.parse_args(argv)
    port = default_port() if args.port is None else args.port
    if args.print_port:
        print(port)
        return
    if args.max_bytes < 1:
        parser.error(f"--max-bytes {args.max_bytes}: expected a positive number of bytes")
    try:
        catcher = MailCatcher(args.out, args.host, port, args.max_bytes)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    catcher.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
