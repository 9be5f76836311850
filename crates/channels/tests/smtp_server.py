"""A real SMTP server for the e-mail channel's tests (crates/channels/tests/email.rs).

Runs aiosmtpd on 127.0.0.1 and reports on stdout, one JSON object a line:

  {"event": "ready", "port": 40123}                              listening
  {"event": "auth", "mechanism": "PLAIN", "login": "u", "ok": true}   an AUTH attempt
  {"event": "message", "mail_from": ..., "rcpt_tos": [...], "subject": ..., ...}
  {"event": "closed", "ehlo": "host", "tls": "TLSv1.3"}          a client session ended

Messages are parsed with Python's email package (policy.default), so "subject",
"from_header" and the parts' "text" are decoded (RFC 2047 headers, quoted-printable/base64 bodies). The
password is never printed.

  python smtp_server.py --mode plain|starttls|smtps [--cert PEM --key PEM]
                        [--user U --password P] [--reject ADDR]... [--defer ADDR]...

plain: no TLS (with --user, AUTH is offered in clear: the trap a client must not fall into
on smtp://). starttls: STARTTLS required before anything else, AUTH only after it. smtps:
TLS from the first byte. --reject/--defer answer RCPT TO ADDR with 550/451. Runs until
stdin closes or it is killed.
"""

import argparse
import email
import email.policy
import json
import logging
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def report(**event):
    print(json.dumps(event, ensure_ascii=False), flush=True)


def tls_version(server):
    """The TLS version of a session ("TLSv1.3"), or None in plaintext. aiosmtpd sets
    session.ssl only after STARTTLS, so ask the transport (it is TLS from the first byte
    under smtps)."""
    transport = getattr(server, "transport", None)
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object.version() if ssl_object is not None else None


class Recorder:
    def __init__(self, reject, defer):
        self.reject = set(reject)
        self.defer = set(defer)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address in self.defer:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "transfer_encoding": part.get("Content-Transfer-Encoding"),
                    "text": part.get_content(),
                }
            )
        report(
            event="message",
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            tls=tls_version(server),
            subject=str(msg["subject"]),
            from_header=str(msg["from"]),
            from_display_name=msg["from"].addresses[0].display_name,
            to=[str(a) for a in msg["to"].addresses],
            content_type=msg.get_content_type(),
            headers={k.lower(): str(v) for k, v in msg.items()},
            parts=parts,
            raw=raw.decode("ascii", "replace"),
        )
        return "250 2.0.0 Ok: queued as WATCHPOST1"


class Authenticator:
    def __init__(self, user, password):
        self.user = user
        self.password = password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            report(event="auth", mechanism=mechanism, login=None, ok=False)
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = login == self.user and auth_data.password.decode("utf-8", "replace") == self.password
        report(event="auth", mechanism=mechanism, login=login, ok=ok)
        return AuthResult(success=ok, handled=False)


class ReportingSMTP(SMTP):
    tls_at_ehlo = None

    async def smtp_EHLO(self, hostname):
        await super().smtp_EHLO(hostname)
        # The transport can't be asked any more once the connection is lost.
        self.tls_at_ehlo = tls_version(self)

    def connection_lost(self, error):
        session = getattr(self, "session", None)
        # The controller's own start-up probe never says EHLO: don't report it.
        if session is not None and session.host_name:
            report(event="closed", ehlo=session.host_name, tls=self.tls_at_ehlo)
        super().connection_lost(error)


class ReportingController(Controller):
    def factory(self):
        return ReportingSMTP(self.handler, **self.SMTP_kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    # aiosmtpd logs a deprecation warning about its own use of Session.login_data.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["plain", "starttls", "smtps"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--reject", action="append", default=[], help="answer 550 to RCPT TO this")
    p.add_argument("--defer", action="append", default=[], help="answer 451 to RCPT TO this")
    args = p.parse_args()

    tls = None
    if args.mode != "plain":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    kwargs = {"hostname": "127.0.0.1", "server_hostname": "watchpost-test"}
    if args.user is not None:
        kwargs["authenticator"] = Authenticator(args.user, args.password)
        # Over STARTTLS, AUTH only after the upgrade. aiosmtpd only counts STARTTLS as TLS,
        # so smtps (TLS from the first byte) and plain (the trap) must not require it.
        kwargs["auth_require_tls"] = args.mode == "starttls"
    if args.mode == "starttls":
        kwargs["tls_context"] = tls
        kwargs["require_starttls"] = True
    elif args.mode == "smtps":
        kwargs["ssl_context"] = tls

    # A free port can be taken between the probe and the bind: try a few.
    for attempt in range(5):
        controller = ReportingController(Recorder(args.reject, args.defer), port=free_port(), **kwargs)
        try:
            controller.start()
            break
        except Exception:
            if attempt == 4:
                raise
    report(event="ready", port=controller.port)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
