"""The mail catcher (aiosmtpd on loopback): real SMTP sessions over a loopback socket, mails read back from disk."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.mailcatcher import MailCatcher, main, read_mails
from flows.settings import Settings
from tests.conftest import ROOT


def test_a_message_is_caught_to_a_file_with_its_envelope(tmp_path: Path) -> None:
    with MailCatcher(tmp_path / "mail") as catcher, smtplib.SMTP("127.0.0.1", catcher.port) as smtp:
        refused = smtp.sendmail("a@x", ["b@x", "c@x"], "Subject: hello\r\n\r\nbody line\r\n")
    assert refused == {}
    (path,) = (tmp_path / "mail").glob("*.eml")
    (mail,) = read_mails(tmp_path / "mail")
    assert mail["Subject"] == "hello" and mail.get_content().splitlines() == ["body line"]
    assert mail["X-Envelope-From"] == "a@x" and mail["X-Envelope-To"] == "b@x, c@x"
    assert not list((tmp_path / "mail").glob(".*.tmp"))
    assert path.read_bytes().startswith(b"X-Envelope-From: a@x\r\n")


def test_leading_dots_are_unstuffed(tmp_path: Path) -> None:
    with MailCatcher(tmp_path / "mail") as catcher, smtplib.SMTP("127.0.0.1", catcher.port) as smtp:
        smtp.sendmail("a@x", ["b@x"], "Subject: dots\r\n\r\n.leading dot\r\nplain\r\n")
    (mail,) = read_mails(tmp_path / "mail")
    assert mail.get_content().splitlines() == [".leading dot", "plain"]


def test_an_announced_oversize_message_is_refused_before_its_data(tmp_path: Path) -> None:
    """smtplib announces the size (MAIL FROM ... SIZE=n): the catcher answers 552 before any data is sent."""
    with (
        MailCatcher(tmp_path / "mail", max_bytes=1000) as catcher,
        smtplib.SMTP("127.0.0.1", catcher.port) as smtp,
    ):
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail("a@x", ["b@x"], "Subject: big\r\n\r\n" + ("y" * 70 + "\r\n") * 30)
        assert refused.value.smtp_code == 552
    assert read_mails(tmp_path / "mail") == []


def _reply(stream: socket.SocketIO, expect: str) -> str:
    """Read one (possibly multi-line) SMTP reply and check its code."""
    lines = []
    while True:
        line = stream.readline().decode()
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    assert lines[-1].startswith(expect), lines
    return "".join(lines)


def test_oversize_data_is_refused_with_552_while_it_arrives_and_the_session_goes_on(tmp_path: Path) -> None:
    """A client that announces nothing (HELO, no SIZE) and sends 200 kB to a 1 kB catcher: 552 after the final dot,
    nothing stored, and the next message on the same connection is stored."""
    with MailCatcher(tmp_path / "mail", max_bytes=1000) as catcher:
        with socket.create_connection(("127.0.0.1", catcher.port), timeout=10) as sock:
            stream = sock.makefile("rwb")

            def send(line: bytes, expect: str) -> str:
                stream.write(line)
                stream.flush()
                return _reply(stream, expect)

            _reply(stream, "220")
            send(b"HELO client\r\n", "250")
            send(b"MAIL FROM:<a@x>\r\n", "250")
            send(b"RCPT TO:<b@x>\r\n", "250")
            send(b"DATA\r\n", "354")
            stream.write(b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * 2000)
            answer = send(b".\r\n", "552")
            assert "Too much mail data" in answer
            assert read_mails(tmp_path / "mail") == []
            send(b"MAIL FROM:<a@x>\r\n", "250")
            send(b"RCPT TO:<b@x>\r\n", "250")
            send(b"DATA\r\n", "354")
            stream.write(b"Subject: small\r\n\r\nfits\r\n")
            send(b".\r\n", "250")
            send(b"QUIT\r\n", "221")
    assert [mail["Subject"] for mail in read_mails(tmp_path / "mail")] == ["small"]


def test_oversize_data_is_dropped_as_it_arrives_not_buffered(tmp_path: Path) -> None:
    """16 MB to a 1 kB catcher: the catcher (a thread of this process) never holds the message; peak memory stays
    far below its size (a catcher that buffers first and checks the size after would hold all 16 MB)."""
    import tracemalloc

    chunk = (b"z" * 998 + b"\r\n") * 1049  # 1 MB of 1000-byte lines (the SMTP maximum), sent 16 times
    with MailCatcher(tmp_path / "mail", max_bytes=1000) as catcher:
        with socket.create_connection(("127.0.0.1", catcher.port), timeout=60) as sock:
            stream = sock.makefile("rwb")
            _reply(stream, "220")
            for line, expect in (
                (b"HELO client\r\n", "250"),
                (b"MAIL FROM:<a@x>\r\n", "250"),
                (b"RCPT TO:<b@x>\r\n", "250"),
                (b"DATA\r\n", "354"),
            ):
                stream.write(line)
                stream.flush()
                _reply(stream, expect)
            tracemalloc.start()
            try:
                for _ in range(16):
                    stream.write(chunk)
                stream.write(b".\r\n")
                stream.flush()
                _reply(stream, "552")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MB while receiving 16 MB"
    assert read_mails(tmp_path / "mail") == []


def test_only_loopback_addresses_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mail catcher host '0\.0\.0\.0': expected a loopback address"):
        MailCatcher(tmp_path, host="0.0.0.0")
    with pytest.raises(ValueError, match="expected a loopback address"):
        MailCatcher(tmp_path, host="example.com")


def test_the_command_line_listens_where_notifications_are_sent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DOCCLASS_SMTP_PORT", raising=False)
    main(["--print-port"])
    assert int(capsys.readouterr().out) == Settings().smtp_port
    monkeypatch.setenv("DOCCLASS_SMTP_PORT", "2626")
    main(["--print-port"])
    assert capsys.readouterr().out.strip() == "2626"


def test_the_command_line_refuses_a_public_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flows.mailcatcher", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "expected a loopback address" in result.stderr
