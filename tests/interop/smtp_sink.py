"""An SMTP sink for the issuer's mail tests (aiosmtpd): listens on 127.0.0.1 on a free port,
prints `PORT <n>` once it accepts connections, and writes each message it receives to
`<dir>/<n>.json` (`mail_from`, `rcpt_tos`, `data` as received, and decoded: `headers` as
name-value pairs, `text` and `html` bodies), written whole then renamed, so a reader never
sees half a file.

    smtp_sink.py DIR [--auth USER:PASSWORD] [--reject] [--tls starttls|ssl]

`--auth`: AUTH PLAIN/LOGIN is required (over plain SMTP, as a local relay might), and only
these credentials pass. `--reject`: every message is refused with a temporary 451.
`--tls starttls`: STARTTLS is offered and required before MAIL; `--tls ssl`: TLS from the
first byte (SMTPS). Either way the sink makes a test CA and a certificate for 127.0.0.1 and
writes the CA to `DIR/ca.pem` before it prints the port.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import datetime
import os
import ssl
import sys
import tempfile
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory, reject):
        self.directory = directory
        self.reject = reject
        self.seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.reject:
            return "451 4.3.0 try again later"
        n = next(self.seq)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        tmp = os.path.join(self.directory, f".{n}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, f"{n}.json"))
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # Not "handled": aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


def tls_context(directory):
    """A server context whose certificate (for 127.0.0.1) a fresh CA signed; the CA goes to
    `directory/ca.pem`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def cert(subject, issuer, key, sign_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - day).not_valid_after(now + day)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp sink test CA")])
    ca = cert(ca_name, ca_name, ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name,
                key, ca_key, False)
    pem = serialization.Encoding.PEM
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as t:
        cf, kf = os.path.join(t, "c.pem"), os.path.join(t, "k.pem")
        with open(cf, "wb") as f:
            f.write(leaf.public_bytes(pem))
        with open(kf, "wb") as f:
            f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        ctx.load_cert_chain(cf, kf)
    return ctx


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--auth")
    ap.add_argument("--reject", action="store_true")
    ap.add_argument("--tls", choices=["starttls", "ssl"])
    args = ap.parse_args()
    handler = Sink(args.dir, args.reject)
    kwargs = {}
    wrap = None
    if args.tls == "starttls":
        kwargs = dict(tls_context=tls_context(args.dir), require_starttls=True)
    elif args.tls == "ssl":
        wrap = tls_context(args.dir)
    if args.auth:
        # A relay that wants AUTH on plain SMTP (aiosmtpd warns about it; it is the point).
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        user, password = args.auth.split(":", 1)
        kwargs |= dict(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", **kwargs), "127.0.0.1", 0, ssl=wrap
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # Ends when the test closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
