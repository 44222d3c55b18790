"""An SMTP sink for the issuer's mail tests (aiosmtpd): listens on 127.0.0.1 on a free port,
prints `PORT <n>` once it accepts connections, and writes each message it receives to
`<dir>/<n>.json` (`mail_from`, `rcpt_tos`, `data` as received, and decoded: `headers` as
name-value pairs, `text` and `html` bodies), written whole then renamed, so a reader never
sees half a file.

    smtp_sink.py DIR [--auth USER:PASSWORD] [--reject]

`--auth`: AUTH PLAIN/LOGIN is required (over plain SMTP, as a local relay might), and only
these credentials pass. `--reject`: every message is refused with a temporary 451.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import sys
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


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--auth")
    ap.add_argument("--reject", action="store_true")
    args = ap.parse_args()
    handler = Sink(args.dir, args.reject)
    kwargs = {}
    if args.auth:
        # A relay that wants AUTH on plain SMTP (aiosmtpd warns about it; it is the point).
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        user, password = args.auth.split(":", 1)
        kwargs = dict(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", **kwargs), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # Ends when the test closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
