"""The Advanced CSV connector's SFTP drop, spoken with paramiko: the server's host key is checked
against the one configured (never trusted on first use), password or private-key authentication,
and each file is written under a temporary name and renamed into place, so the planner never picks
up half a file."""
from __future__ import annotations

import base64
import io
import posixpath
import socket
from typing import IO

import paramiko

from .settings import SftpTarget


class SftpError(Exception):
    """An upload that may succeed when tried again (network, server, permissions being fixed)."""


class HostKeyMismatch(SftpError):
    """The server is not the one configured: never retried until the configuration changes."""


def _known_key(entry: str) -> tuple[str, bytes]:
    """("ssh-ed25519", key bytes) from a known_hosts entry ("[host]:port ssh-ed25519 AAAA…" or "ssh-ed25519 AAAA…")."""
    parts = entry.split()
    for i, part in enumerate(parts):
        if part.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(parts):
            try:
                return part, base64.b64decode(parts[i + 1], validate=True)
            except ValueError:
                break
    raise HostKeyMismatch("the configured SFTP host key is not a known_hosts entry (type and base64 key)")


def _private_key(text: str) -> paramiko.PKey:
    for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return kind.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise SftpError("the SFTP private key cannot be read (OpenSSH format, without a passphrase)")


class SftpDrop:
    """`with SftpDrop(target) as drop: drop.put_atomic("sales_orders", name, fileobj)`."""

    def __init__(self, target: SftpTarget, *, timeout: float = 20.0):
        self.target = target
        self.timeout = timeout
        self.transport: paramiko.Transport | None = None
        self.sftp: paramiko.SFTPClient | None = None

    def __enter__(self) -> "SftpDrop":
        target = self.target
        if not target.host_key:
            raise HostKeyMismatch(f"no known host key is configured for {target.host}:{target.port}")
        key_type, key_bytes = _known_key(target.host_key)
        try:
            sock = socket.create_connection((target.host, target.port), timeout=self.timeout)
            self.transport = paramiko.Transport(sock)
            self.transport.start_client(timeout=self.timeout)
            server_key = self.transport.get_remote_server_key()
            if server_key.get_name() != key_type or server_key.asbytes() != key_bytes:
                raise HostKeyMismatch(
                    f"{target.host}:{target.port} presented a {server_key.get_name()} host key that is not the "
                    "configured one: refusing to upload (check the server, then the connection's host key)")
            if target.private_key:
                self.transport.auth_publickey(target.username, _private_key(target.private_key))
            else:
                self.transport.auth_password(target.username, target.password)
            self.sftp = paramiko.SFTPClient.from_transport(self.transport)
            self.sftp.get_channel().settimeout(self.timeout)
        except HostKeyMismatch:
            self.close()
            raise
        except paramiko.AuthenticationException as exc:
            self.close()
            raise SftpError(f"SFTP sign-in as {target.username} refused: {exc}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise SftpError(f"cannot reach the SFTP server {target.host}:{target.port}: {exc}") from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for thing in (self.sftp, self.transport):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # closing a broken session must not hide the error that broke it
                pass
        self.sftp = self.transport = None

    def _ensure_dir(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            try:
                self.sftp.stat(current)
            except FileNotFoundError:
                self.sftp.mkdir(current)

    def put_atomic(self, subdir: str, name: str, data: IO[bytes]) -> str:
        """Upload `data` as remote_dir/subdir/name: written as .name.part, then renamed. Returns the path."""
        directory = posixpath.join(self.target.remote_dir or "/", subdir)
        final = posixpath.join(directory, name)
        partial = posixpath.join(directory, f".{name}.part")
        try:
            self._ensure_dir(directory)
            data.seek(0)
            self.sftp.putfo(data, partial, confirm=True)
            try:
                self.sftp.posix_rename(partial, final)
            except (IOError, paramiko.SSHException):
                self.sftp.rename(partial, final)  # servers without posix-rename (names are unique anyway)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            try:
                self.sftp.remove(partial)
            except Exception:
                pass
            raise SftpError(f"uploading {final} failed: {exc}") from None
        return final
