"""The local target's artifact store: a small S3 server with Kubeflow's multi-user layout and policy.

A live Kubeflow (v1.11.0) keeps pipeline artifacts in the `mlpipeline` bucket of an S3 service
(SeaweedFS behind `minio-service`). Its pipelines profile controller gives each profile namespace
a pipeline root, `minio://mlpipeline/private-artifacts/<namespace>/v2/artifacts` (the namespace's
`kfp-launcher` ConfigMap), and an access key whose policy allows `s3:Get*`, `s3:Put*` and
`s3:List*` only under `artifacts/`, `private-artifacts/<namespace>/`, `private/<namespace>/` and
`shared/`. No MinIO or SeaweedFS binary can be installed here, so this server plays that store:
it checks every request's AWS Signature V4 against the namespace keys it was given and refuses
(403 AccessDenied) whatever the namespace's grants do not cover, including a listing whose prefix
is outside them. A client that looks in the wrong place fails here as it would on a cluster.

Objects are files under `<root>/<bucket>/<key>`, so kfp.local can write a namespace's pipeline
root directly and the store serves what it wrote. Only what the smoke suite uses is implemented:
ListObjectsV2, GetObject, HeadObject, PutObject, HeadBucket and GetBucketLocation.

Run as `python -m infra.local_target.object_store --root DIR --port P --identities FILE`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import re
import sys
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

BUCKET = "mlpipeline"
REGION = "us-east-1"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
UNSIGNED = "UNSIGNED-PAYLOAD"
HEALTH_PATH = "/minio/health/live"


# -- the layout and policy a multi-user Kubeflow gives each profile namespace ------------------------

def pipeline_root(namespace: str, bucket: str = BUCKET) -> str:
    """The namespace's default pipeline root, as its `kfp-launcher` ConfigMap states it."""
    return f"minio://{bucket}/private-artifacts/{namespace}/v2/artifacts"


def launcher_configmap(namespace: str, bucket: str = BUCKET) -> dict[str, Any]:
    """The namespace's `kfp-launcher` ConfigMap, as the pipelines profile controller makes it."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kfp-launcher", "namespace": namespace},
            "data": {"defaultPipelineRoot": pipeline_root(namespace, bucket)}}


def namespace_grants(namespace: str, bucket: str = BUCKET) -> tuple[str, ...]:
    """The object patterns (`bucket/key`, `*` matches anything) a namespace's key may read, write
    and list: the resources of the policy the profile controller attaches to it."""
    return (f"{bucket}/artifacts/*", f"{bucket}/private-artifacts/{namespace}/*",
            f"{bucket}/private/{namespace}/*", f"{bucket}/shared/*")


@dataclass(frozen=True)
class Identity:
    name: str
    secret_key: str
    grants: tuple[str, ...]

    def may_access(self, bucket: str, key: str) -> bool:
        """An object is covered when one grant matches `bucket/key` (`*` matches any characters)."""
        target = f"{bucket}/{key}"
        return any(re.fullmatch(".*".join(map(re.escape, g.split("*"))), target) for g in self.grants)

    def may_list(self, bucket: str, prefix: str) -> bool:
        """A listing is covered when every key it could return is: its prefix lies inside a grant."""
        target = f"{bucket}/{prefix}"
        return any(target.startswith(g[:-1]) for g in self.grants if g.endswith("*") and "*" not in g[:-1])

    def owns_bucket(self, bucket: str) -> bool:
        return f"{bucket}/*" in self.grants


def load_identities(path: Path) -> dict[str, Identity]:
    """{access key: {"name", "secret_key", "grants"}} from the JSON file the target writes (0600)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {access: Identity(v["name"], v["secret_key"], tuple(v["grants"])) for access, v in data.items()}


# -- AWS Signature Version 4 ------------------------------------------------------------------------

AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, *"
                     r"SignedHeaders=([^,]+), *Signature=([0-9a-f]{64})")


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_request(method: str, raw_path: str, raw_query: str, headers: dict[str, str],
                      signed: list[str], payload_hash: str) -> str:
    """SigV4's canonical request for S3: the path as sent, the query re-encoded and sorted."""
    pairs = sorted((_encode(k), _encode(v)) for k, v in parse_qsl(raw_query, keep_blank_values=True))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    lines = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    return "\n".join([method, raw_path or "/", query, lines, ";".join(signed), payload_hash])


def signature(secret_key: str, date: str, region: str, amz_date: str, canonical: str) -> str:
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def authenticate(identities: dict[str, Identity], method: str, raw_path: str, raw_query: str,
                 headers: dict[str, str]) -> Identity:
    """The identity whose key signed this request, or Denied (anonymous requests are refused)."""
    found = AUTH_RE.fullmatch(headers.get("authorization", "").strip())
    if not found:
        raise Denied(403, "AccessDenied", "anonymous requests are refused: sign with a namespace's key")
    access, date, region, signed_headers, sent = found.groups()
    identity = identities.get(access)
    if identity is None:
        raise Denied(403, "InvalidAccessKeyId", "the access key is not known to this store")
    signed = signed_headers.split(";")
    payload_hash = headers.get("x-amz-content-sha256", UNSIGNED)
    canonical = canonical_request(method, raw_path, raw_query, headers, signed, payload_hash)
    expected = signature(identity.secret_key, date, region, headers.get("x-amz-date", ""), canonical)
    if not hmac.compare_digest(expected, sent):
        raise Denied(403, "SignatureDoesNotMatch", "the request signature does not match the key's secret")
    return identity


# -- the server --------------------------------------------------------------------------------------

def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _etag(path: Path) -> str:
    return '"' + hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() + '"'


class StoreHandler(BaseHTTPRequestHandler):
    server_version = "kfstack-object-store"
    root: Path
    identities: dict[str, Identity]

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # Every method goes through one dispatcher.
    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        if method == "GET" and parts.path == HEALTH_PATH:  # MinIO's liveness probe, unauthenticated
            self._send(200, b"", {})
            return
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method in ("PUT", "POST") else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            identity = authenticate(self.identities, method, parts.path, parts.query, headers)
            if method == "PUT" and headers.get("x-amz-content-sha256", UNSIGNED) not in (
                    UNSIGNED, hashlib.sha256(body).hexdigest()):
                raise Denied(400, "XAmzContentSHA256Mismatch", "the body does not match its signed hash")
            self._dispatch(method, identity, bucket, key, query, body)
        except Denied as exc:
            self._error(method, exc.status, exc.code, exc.message, f"/{bucket}/{key}")

    def _dispatch(self, method: str, identity: Identity, bucket: str, key: str, query: dict[str, str],
                  body: bytes) -> None:
        bucket_dir = self.root / bucket
        if not bucket or not bucket_dir.is_dir():
            raise Denied(404, "NoSuchBucket", f"no bucket {bucket!r}")
        if not key:
            if method == "GET" and "location" in query:
                self._xml(200, f'<LocationConstraint xmlns="{XMLNS}">{REGION}</LocationConstraint>')
            elif method == "GET" and query.get("list-type") == "2":
                self._list(identity, bucket, query)
            elif method == "HEAD":
                if not identity.owns_bucket(bucket):
                    raise Denied(403, "AccessDenied", f"{identity.name} has no grant on the whole bucket")
                self._send(200, b"", {})
            else:
                raise Denied(501, "NotImplemented", f"{method} on a bucket is not implemented here")
            return
        if ".." in key.split("/"):
            raise Denied(400, "InvalidObjectName", "object names may not contain '..' segments")
        if not identity.may_access(bucket, key):
            raise Denied(403, "AccessDenied", f"{identity.name} may not access {bucket}/{key}")
        path = bucket_dir / key
        if method == "PUT":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            self._send(200, b"", {"ETag": _etag(path)})
        elif method in ("GET", "HEAD"):
            if not path.is_file():
                raise Denied(404, "NoSuchKey", f"no object {bucket}/{key}")
            stat = path.stat()
            data = path.read_bytes() if method == "GET" else b""
            self._send(200, data, {"ETag": _etag(path), "Last-Modified": _http_date(stat.st_mtime),
                                   "Content-Type": "application/octet-stream"}, length=stat.st_size)
        else:
            raise Denied(501, "NotImplemented", f"{method} on an object is not implemented here")

    def _list(self, identity: Identity, bucket: str, query: dict[str, str]) -> None:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        if not identity.may_list(bucket, prefix):
            raise Denied(403, "AccessDenied", f"{identity.name} may not list {bucket}/{prefix}")
        bucket_dir = self.root / bucket
        keys = sorted(str(p.relative_to(bucket_dir)) for p in bucket_dir.rglob("*") if p.is_file())
        contents, prefixes = [], set()
        for key in (k for k in keys if k.startswith(prefix)):
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
                continue
            stat = (bucket_dir / key).stat()
            contents.append(f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(stat.st_mtime)}</LastModified>"
                            f"<ETag>{escape(_etag(bucket_dir / key))}</ETag><Size>{stat.st_size}</Size>"
                            "<StorageClass>STANDARD</StorageClass></Contents>")
        common = [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in sorted(prefixes)]
        self._xml(200, f'<ListBucketResult xmlns="{XMLNS}"><Name>{escape(bucket)}</Name>'
                       f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(common)}</KeyCount>"
                       f"<MaxKeys>1000</MaxKeys><Delimiter>{escape(delimiter)}</Delimiter>"
                       f"<IsTruncated>false</IsTruncated>{''.join(contents)}{''.join(common)}</ListBucketResult>")

    def _xml(self, status: int, body: str) -> None:
        self._send(status, ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode(),
                   {"Content-Type": "application/xml"})

    def _error(self, method: str, status: int, code: str, message: str, resource: str) -> None:
        body = (f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
                f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4().hex}</RequestId></Error>")
        if method == "HEAD":
            self._send(status, b"", {"x-amz-error-code": code})
        else:
            self._xml(status, body)

    def _send(self, status: int, body: bytes, headers: dict[str, str], length: int | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)


def serve(root: Path, port: int, identities: dict[str, Identity], host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server bound to host:port (not yet serving: call serve_forever)."""
    handler = type("BoundStoreHandler", (StoreHandler,), {"root": root, "identities": identities})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local target's S3 artifact store (see module doc).")
    parser.add_argument("--root", type=Path, required=True, help="directory holding <bucket>/<key> files")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--identities", type=Path, required=True, help="JSON file of access keys and grants")
    args = parser.parse_args(argv)
    server = serve(args.root, args.port, load_identities(args.identities))
    print(f"object store on 127.0.0.1:{args.port}, root {args.root}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
