#!/usr/bin/env python3
"""Where an erased user's id still is: prints one line "<place> <what>" per file, Redis
key or bucket object holding the id (plain or URL-encoded); counts go to stderr.

  erasure_scan.py USER REDIS_PORT REDIS_PREFIX BUCKET PREFIX [PLACE=DIR ...]

Used by scripts/check-erasure.sh (embedded mode) and scripts/cluster.sh (cluster mode).
Needs boto3, and FLYWHEEL_S3_ENDPOINT (or AWS_ENDPOINT_URL) and AWS_REGION set."""
import os, socket, sys, urllib.parse
import boto3
user, redis_port, redis_prefix, bucket, prefix = sys.argv[1:6]
places = [arg.split("=", 1) for arg in sys.argv[6:]]
needles = {user.encode(), urllib.parse.quote(user, safe="").encode()}
def holds(blob):
    return any(n in blob for n in needles)
def scan_dir(place, root):
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                if holds(f.read()) or holds(path.encode()):
                    print(f"{place} {os.path.relpath(path, root)}")
for place, root in places:
    scan_dir(place, root)

class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        self.buf = b""
    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line
    def _exact(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out
    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")
    def __call__(self, *args):
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        return self._reply()

r = Redis(redis_port)
cursor, keys = b"0", []
while True:
    cursor, batch = r("SCAN", cursor, "MATCH", redis_prefix + ":*", "COUNT", 1000)
    keys.extend(batch)
    if cursor == b"0":
        break
for key in keys:
    kind = r("TYPE", key)
    if kind == b"string":
        values = [r("GET", key) or b""]
    elif kind == b"list":
        values = r("LRANGE", key, 0, -1)
    elif kind == b"zset":
        values = r("ZRANGE", key, 0, -1)
    elif kind == b"hash":
        values = r("HGETALL", key)
    elif kind == b"set":
        values = r("SMEMBERS", key)
    else:
        values = []
    if holds(key) or any(holds(v) for v in values):
        print(f"redis {key.decode(errors='replace')}")
print(f"scanned redis-keys {len(keys)}", file=sys.stderr)

s3 = boto3.client("s3", endpoint_url=os.environ.get("FLYWHEEL_S3_ENDPOINT") or os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
objects = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for obj in page.get("Contents", []):
        objects += 1
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        if holds(body) or holds(obj["Key"].encode()):
            print(f"bucket {obj['Key']}")
print(f"scanned bucket-objects {objects}", file=sys.stderr)
