#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A bearer-token server for the test registry (tests/lib/registry.sh, token mode).

The registry answers an unauthenticated request with 401 and
`WWW-Authenticate: Bearer realm=".../token",service="...",scope="..."`; the
client (skopeo) asks this server for a token with HTTP basic credentials:

    GET /token?service=SERVICE&scope=repository:NAME:pull,push

and retries with `Authorization: Bearer TOKEN`. The token is a JWT signed
RS256 by a key whose certificate (chained to the registry's rootcertbundle) is
in the header's x5c, which is how the distribution registry finds and trusts
the signing key. One user; wrong or missing credentials get 401. Each token
issued and each refusal is one line on stderr (the test's proof that the
bearer path was taken).

Standard library only; the RS256 signature is made by `openssl dgst`.
"""

import argparse
import base64
import binascii
import hmac
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.parse

TOKEN_LIFETIME = 300  # seconds
ACTIONS = ("pull", "push")  # what the one user may do in any repository


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def log(msg):
    sys.stderr.write("%s token-server: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Config:
    def __init__(self, args):
        self.service = args.service
        self.issuer = args.issuer
        self.user = args.user
        with open(args.password_file, encoding="utf-8") as f:
            self.password = f.read().strip()
        self.sign_key = args.sign_key
        with open(args.sign_cert, encoding="ascii") as f:
            pem = f.read()
        body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        self.x5c = ["".join(body.split())]  # the DER, standard base64, as x5c wants


def sign_rs256(key, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        raise RuntimeError("openssl dgst -sign failed: " + p.stderr.decode(errors="replace"))
    return p.stdout


def parse_scopes(values):
    """[(type, name, [actions])] of the scope parameters (each may hold several, space separated)."""
    out = []
    for v in values:
        for s in v.split():
            kind, sep, rest = s.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name:
                continue
            out.append((kind, name, [a for a in actions.split(",") if a]))
    return out


def make_token(cfg, subject, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": cfg.x5c}
    claims = {
        "iss": cfg.issuer,
        "sub": subject,
        "aud": cfg.service,
        "exp": now + TOKEN_LIFETIME,
        "nbf": now - 10,
        "iat": now,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    return signing_input + "." + b64url(sign_rs256(cfg.sign_key, signing_input.encode()))


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "kybernate-test-token-server"
    cfg = None

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log("%s %s" % (self.address_string(), format % args))

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def credentials(self):
        """The (user, password) of a basic Authorization header, or None."""
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, sep, password = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None

    def do_GET(self):  # pylint: disable=invalid-name
        cfg = self.cfg
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
            return
        q = urllib.parse.parse_qs(url.query)
        if q.get("service", [""])[0] != cfg.service:
            self.reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "unknown service"}]})
            return
        scopes = parse_scopes(q.get("scope", []))
        wanted = " ".join("%s:%s:%s" % (k, n, ",".join(a)) for k, n, a in scopes) or "(no scope)"
        cred = self.credentials()
        if cred is None or not (hmac.compare_digest(cred[0], cfg.user) and
                                hmac.compare_digest(cred[1], cfg.password)):
            log("refused: %s for %s" % ("no credentials" if cred is None else
                                        "wrong credentials of user %r" % cred[0], wanted))
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "token server: invalid username or password"}]},
                       [("WWW-Authenticate", 'Basic realm="kybernate test token server"')])
            return
        access = []
        for kind, name, actions in scopes:
            granted = [a for a in actions if kind == "repository" and a in ACTIONS]
            access.append({"type": kind, "name": name, "actions": granted})
        token = make_token(cfg, cred[0], access)
        granted = " ".join("%s:%s:%s" % (a["type"], a["name"], ",".join(a["actions"])) for a in access)
        log("issued token to %s for %s" % (cred[0], granted or "(no scope)"))
        self.reply(200, {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port-file", required=True, help="written with the port once listening")
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--sign-key", required=True, help="RSA private key (PEM) the tokens are signed with")
    p.add_argument("--sign-cert", required=True, help="its certificate (PEM), sent as x5c")
    p.add_argument("--service", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    args = p.parse_args()

    Handler.cfg = Config(args)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    log("listening on https://127.0.0.1:%d/token (service %s, issuer %s)" % (port, args.service, args.issuer))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
