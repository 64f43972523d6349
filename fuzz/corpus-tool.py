#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers of fuzz/make-corpus.sh (no third-party modules).

  proxy LISTEN UPSTREAM RECDIR   SOCK_SEQPACKET relay between kybernatectl and
                                 kybernated; every datagram the client sends
                                 is also written to RECDIR/NNNN
  ttrpc TRACEDIR TTRPC_OUT URI_OUT
                                 rebuilds the byte streams the shim received
                                 (strace -ff -xx logs of recvfrom/close) and
                                 writes the ones that are ttrpc client
                                 connections: each request frame alone, and
                                 each connection's first 64 KiB; the stdio
                                 strings of Create and Exec go to URI_OUT
  criu IMGDIR OUT                CRIU images, each behind the selector byte
                                 fuzz-criu-image reads first
  rootfs-diff CKPTDIR OUT        deleted.files and rootfs-diff.tar as
                                 fuzz-rootfs-diff takes them
  tar-drop IN OUT REGEX...       copies the tar IN to OUT without the entries
                                 whose name matches (with their pax or GNU
                                 long-name headers); every other block is
                                 copied as it is (GNU tar --delete garbled
                                 the export's tail)
"""
import os
import re
import socket
import struct
import sys
import threading


def proxy(listen, upstream, recdir):
    os.makedirs(recdir, exist_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.path.exists(listen):
        os.unlink(listen)
    srv.bind(listen)
    srv.listen(16)
    lock = threading.Lock()
    count = [0]

    def pump(src, dst, record):
        try:
            while True:
                d = src.recv(1 << 20)
                if not d:
                    break
                if record:
                    with lock:
                        count[0] += 1
                        with open(os.path.join(recdir, "%04d" % count[0]), "wb") as f:
                            f.write(d)
                dst.send(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        u.connect(upstream)
        threading.Thread(target=pump, args=(c, u, True), daemon=True).start()
        threading.Thread(target=pump, args=(u, c, False), daemon=True).start()


# ---- protobuf wire format, just enough for ttrpc Request and Create/Exec ----

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if not c & 0x80:
            return v, i


def fields(b):
    i, out = 0, []
    while i < len(b):
        k, i = varint(b, i)
        n, t = k >> 3, k & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 2:
            ln, i = varint(b, i)
            v = b[i:i + ln]
            i += ln
        elif t == 1:
            v, i = b[i:i + 8], i + 8
        elif t == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % t)
        out.append((n, v))
    return out


RECV = re.compile(r'^(?:\d+ )?recvfrom\((\d+), "((?:\\x[0-9a-f]{2})*)"(?:\.\.\.)?, .*\) = (\d+)')
CLOSE = re.compile(r'^(?:\d+ )?close\((\d+)\)')


def streams(path):
    """Byte streams received on each fd of one traced process, split at close."""
    cur, done = {}, []
    with open(path, errors="replace") as f:
        for line in f:
            m = RECV.match(line)
            if m:
                fd, n = int(m.group(1)), int(m.group(3))
                data = bytes.fromhex(m.group(2).replace("\\x", ""))[:n]
                cur.setdefault(fd, bytearray()).extend(data)
                continue
            m = CLOSE.match(line)
            if m and int(m.group(1)) in cur:
                done.append(bytes(cur.pop(int(m.group(1)))))
    done.extend(bytes(v) for v in cur.values())
    return done


def frames(b):
    i, out = 0, []
    while len(b) - i >= 10:
        ln, sid, typ, flags = struct.unpack(">IIBB", b[i:i + 10])
        if ln > 4 << 20 or len(b) - i - 10 < ln:
            break
        out.append((b[i:i + 10 + ln], sid, typ, b[i + 10:i + 10 + ln]))
        i += 10 + ln
    return out


def ttrpc(tracedir, out, uri_out):
    os.makedirs(out, exist_ok=True)
    os.makedirs(uri_out, exist_ok=True)
    seen, uris, nconn = set(), set(), 0
    for name in sorted(os.listdir(tracedir)):
        for s in streams(os.path.join(tracedir, name)):
            fr = frames(s)
            if not fr or fr[0][2] != 1:
                continue  # not a client talking to the shim's server
            reqs = []
            for raw, sid, typ, payload in fr:
                if typ != 1:
                    continue
                try:
                    req = dict((n, v) for n, v in fields(payload) if n in (1, 2, 3))
                    method = req[2].decode()
                except (ValueError, KeyError, IndexError, UnicodeDecodeError):
                    continue
                reqs.append((method, raw))
                body = fields(req.get(3, b""))
                # Create: stdin 5, stdout 6, stderr 7; Exec: 4, 5, 6.
                keys = {"Create": (5, 6, 7), "Exec": (4, 5, 6)}.get(method, ())
                for n, v in body:
                    if n in keys and isinstance(v, bytes) and v:
                        uris.add(v)
            if not reqs:
                continue
            for method, raw in reqs:
                if raw in seen:
                    continue
                k = 1
                while os.path.exists(os.path.join(out, "real-%s-%d" % (method.lower(), k))):
                    k += 1
                if k > 3:
                    continue  # three of a kind are enough
                seen.add(raw)
                with open(os.path.join(out, "real-%s-%d" % (method.lower(), k)), "wb") as f:
                    f.write(raw)
            conn = b""
            for raw, *_ in fr:
                if len(conn) + len(raw) > 64 << 10:
                    break
                conn += raw
            nconn += 1
            with open(os.path.join(out, "real-connection-%d" % nconn), "wb") as f:
                f.write(conn)
    for k, u in enumerate(sorted(uris), 1):
        with open(os.path.join(uri_out, "real-%d" % k), "wb") as f:
            f.write(u)
    print("ttrpc: %d frames, %d connections, %d stdio strings" % (len(seen), nconn, len(uris)))


def criu(imgdir, out):
    os.makedirs(out, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(imgdir)):
        if name == "pstree.img":
            sel = 0
        elif re.match(r"^core-\d+\.img$", name):
            sel = 1
        elif name.startswith("stats-"):
            sel = 2
        elif name == "inventory.img":
            sel = 3
        else:
            continue
        with open(os.path.join(imgdir, name), "rb") as f:
            data = f.read()
        with open(os.path.join(out, "real-" + name), "wb") as f:
            f.write(bytes([sel]) + data)
        n += 1
    print("criu: %d images" % n)


def rootfs_diff(ckpt, out):
    deleted = b""
    p = os.path.join(ckpt, "deleted.files")
    if os.path.exists(p):
        with open(p, "rb") as f:
            deleted = f.read()[:0xFFFF]
    with open(os.path.join(ckpt, "rootfs-diff.tar"), "rb") as f:
        tar = f.read()
    with open(out, "wb") as f:
        f.write(struct.pack("<H", len(deleted)) + deleted + tar)


def tar_drop(src, dst, *patterns):
    with open(src, "rb") as f:
        d = f.read()
    out, pending, i = bytearray(), bytearray(), 0
    while i + 512 <= len(d):
        h = d[i:i + 512]
        if h == bytes(512):
            out += pending + d[i:]
            break
        size = int(h[124:136].split(b"\0")[0].strip() or b"0", 8)
        end = i + 512 + (size + 511) // 512 * 512
        typ = h[156:157]
        if typ in (b"x", b"L", b"K"):
            pending += d[i:end]  # belongs to the next entry
        else:
            name = h[0:100].split(b"\0")[0].decode(errors="replace")
            if not any(re.search(p, name) for p in patterns):
                out += pending + d[i:end]
            pending = bytearray()
        i = end
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"proxy": proxy, "ttrpc": ttrpc, "criu": criu, "rootfs-diff": rootfs_diff,
     "tar-drop": tar_drop}[cmd](*args)
