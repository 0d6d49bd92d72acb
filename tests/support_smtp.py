"""A real SMTP sink on 127.0.0.1 for tests (smtpd left the standard library in 3.12).

It speaks just enough ESMTP for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP,
QUIT, and keeps every message it accepts. No STARTTLS: a client that insists on it fails.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_to: list[str]
    auth: tuple[str, str] | None  # (user, password) given with AUTH PLAIN
    message: EmailMessage


class SmtpSink:
    """`with SmtpSink() as sink:` ... `sink.port`, `sink.mails`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                mail_from = ""
                rcpt_to: list[str] = []
                auth: tuple[str, str] | None = None
                self.reply("220 sink ESMTP")
                while line := self.rfile.readline():
                    verb, _, arg = line.decode().rstrip("\r\n").partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        self.reply("250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME")
                    elif verb in ("HELO", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "RSET":
                        mail_from, rcpt_to = "", []
                        self.reply("250 ok")
                    elif verb == "AUTH":
                        _, _, initial = arg.partition(" ")
                        if not initial:
                            self.reply("334 ")
                            initial = self.rfile.readline().decode().strip()
                        _, user, password = base64.b64decode(initial).decode().split("\0")
                        auth = (user, password)
                        self.reply("235 authenticated")
                    elif verb == "MAIL":
                        mail_from, rcpt_to = arg.split(":", 1)[1].split()[0].strip("<>"), []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        rcpt_to.append(arg.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        message = email.message_from_bytes(data, policy=email.policy.default)
                        assert isinstance(message, EmailMessage)
                        sink._keep(Mail(mail_from, rcpt_to, auth, message))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="smtp-sink", daemon=True
        )

    def _keep(self, mail: Mail) -> None:
        with self._lock:
            self._mails.append(mail)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
