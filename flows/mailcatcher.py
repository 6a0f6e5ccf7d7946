"""A tiny SMTP catcher for the demo and the tests: every mail received is stored as ``<folder>/<n>.eml``.

aiosmtpd is not part of the environment, so this speaks the minimal SMTP dialogue itself with asyncio streams
(HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It relays nothing and binds to loopback by default.

    python -m flows.mailcatcher --port 1025 --out .data/mail
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import itertools
import logging
import os
import threading
import time
from email.message import EmailMessage
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class MailCatcher:
    """SMTP server storing each message under ``out_dir``; run it with :meth:`serve_forever` or as a thread."""

    def __init__(self, out_dir: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.out_dir = Path(out_dir)
        self.host = host
        self.port = port
        self._counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------------------------------ SMTP

    def _store(self, data: bytes, mail_from: str, rcpt: list[str]) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self._counter):04d}.eml"
        envelope = f"X-Envelope-From: {mail_from}\r\nX-Envelope-To: {', '.join(rcpt)}\r\n".encode()
        tmp = self.out_dir / f".{name}.tmp"
        tmp.write_bytes(envelope + data)
        target = self.out_dir / name
        os.replace(tmp, target)  # readers never see half a message
        logger.info("stored mail from %s to %s as %s", mail_from, rcpt, target)
        return target

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        mail_from, rcpt = "", []
        try:
            await reply("220 localhost docclass mail catcher ready")
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    writer.write(b"250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n")
                    await reply(f"250 SIZE {MAX_MESSAGE_BYTES}")
                elif verb == "HELO":
                    await reply("250 localhost")
                elif verb == "MAIL":
                    mail_from, rcpt = arg.partition(":")[2].strip().split(" ")[0].strip("<>"), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    rcpt.append(arg.partition(":")[2].strip().split(" ")[0].strip("<>"))
                    await reply("250 OK")
                elif verb == "DATA":
                    if not rcpt:
                        await reply("503 need RCPT before DATA")
                        continue
                    await reply("354 end data with <CR><LF>.<CR><LF>")
                    lines: list[bytes] = []
                    size = 0
                    while True:
                        chunk = await reader.readline()
                        if not chunk:
                            return
                        if chunk in (b".\r\n", b".\n"):
                            break
                        # Dot-stuffing: a leading dot was doubled by the client.
                        chunk = chunk[1:] if chunk.startswith(b"..") else chunk
                        size += len(chunk)
                        lines.append(chunk)
                    if size > MAX_MESSAGE_BYTES:
                        await reply("552 message too large")
                    else:
                        self._store(b"".join(lines), mail_from, rcpt)
                        await reply("250 OK stored")
                    mail_from, rcpt = "", []
                elif verb == "RSET":
                    mail_from, rcpt = "", []
                    await reply("250 OK")
                elif verb == "NOOP":
                    await reply("250 OK")
                elif verb == "QUIT":
                    await reply("221 bye")
                    return
                else:
                    await reply(f"502 command {verb or '(empty)'} not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    # ---------------------------------------------------------------------------------------- running

    async def _start(self) -> asyncio.Server:
        self._server = await asyncio.start_server(self._session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted."""

        async def main() -> None:
            server = await self._start()
            logger.info("mail catcher on %s:%s, mails -> %s", self.host, self.port, self.out_dir)
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    def start(self) -> MailCatcher:
        """Serve in a daemon thread (port 0 picks a free port, read it from :attr:`port` afterwards)."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="mailcatcher", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"mail catcher did not start on {self.host}:{self.port} within 10 s")
        return self

    def stop(self) -> None:
        """Stop a catcher started with :meth:`start`."""
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_mails(out_dir: Path) -> list[EmailMessage]:
    """Stored mails, oldest first."""
    if not Path(out_dir).is_dir():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sorted(Path(out_dir).glob("*.eml"))
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SMTP catcher: stores every mail as a .eml file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--out", type=Path, default=Path(".data/mail"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        MailCatcher(args.out, args.host, args.port).serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
