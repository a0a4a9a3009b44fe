"""Deterministic bcrypt hashes, so a second `pulumi up` sees the same Secret and changes nothing."""

from __future__ import annotations

import hashlib

import bcrypt

from infra.config import DexUser, Secret

BCRYPT_COST = 10
# bcrypt's own base64 alphabet (not the standard one).
_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _bcrypt_b64(data: bytes) -> str:
    bits = int.from_bytes(data, "big")
    total = len(data) * 8
    chars = []
    for shift in range(total - 6, -6, -6):
        chars.append(_ALPHABET[(bits >> shift) & 0x3F] if shift >= 0 else _ALPHABET[(bits << -shift) & 0x3F])
    return "".join(chars)


def stable_salt(stack: str, email: str) -> bytes:
    """A salt unique to the stack and user and stable across runs (it depends on no password)."""
    digest = hashlib.sha256(f"kubeflow-stacks/{stack}/{email}".encode()).digest()[:16]
    return f"$2b${BCRYPT_COST:02d}${_bcrypt_b64(digest)[:22]}".encode()


def hash_password(password: str, *, stack: str, email: str) -> str:
    return bcrypt.hashpw(password.encode(), stable_salt(stack, email)).decode()


def user_hash(user: DexUser, stack: str) -> Secret:
    """The hash Dex gets for a user: the given hash, or one made from the given password."""
    if user.password_hash is not None:
        return user.password_hash
    assert user.password is not None, "config validation guarantees a password or a hash"
    return Secret(hash_password(user.password.reveal(), stack=stack, email=user.email))


def verify(password: str, hashed: str) -> bool:
    return bcrypt.checkpw(password.encode(), hashed.encode())
