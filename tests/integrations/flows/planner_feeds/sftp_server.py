"""A real SFTP server on loopback for the feed tests: paramiko's server interface in a thread,
serving a temporary directory, with password auth and a way to make uploads fail."""
from __future__ import annotations

import os
import socket
import threading

import paramiko
from paramiko import SFTP_FAILURE, SFTP_OK, SFTP_PERMISSION_DENIED, SFTPAttributes, SFTPHandle, SFTPServer


class _Auth(paramiko.ServerInterface):
    def __init__(self, server: "LoopbackSftpServer"):
        self.server = server

    def check_auth_password(self, username, password):
        ok = (username, password) == (self.server.username, self.server.password)
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(SFTPHandle):
    def stat(self):
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)


def _files(server: "LoopbackSftpServer"):
    class Files(paramiko.SFTPServerInterface):
        def _real(self, path):
            path = os.path.normpath("/" + path).lstrip("/")
            return os.path.join(server.root, path)

        def list_folder(self, path):
            try:
                out = []
                for name in os.listdir(self._real(path)):
                    attr = SFTPAttributes.from_stat(os.stat(os.path.join(self._real(path), name)))
                    attr.filename = name
                    out.append(attr)
                return out
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno)

        def stat(self, path):
            try:
                return SFTPAttributes.from_stat(os.stat(self._real(path)))
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno)

        lstat = stat

        def open(self, path, flags, attr):
            writing = flags & (os.O_WRONLY | os.O_RDWR)
            if writing and server.allow_uploads is not None:
                if server.allow_uploads <= 0:
                    server.refused += 1
                    return SFTP_PERMISSION_DENIED
                server.allow_uploads -= 1
            if writing and server.fail_uploads > 0:
                server.fail_uploads -= 1
                server.refused += 1
                return SFTP_PERMISSION_DENIED
            try:
                fd = os.open(self._real(path), flags | getattr(os, "O_BINARY", 0), 0o644)
                mode = "wb" if flags & os.O_WRONLY else ("r+b" if flags & os.O_RDWR else "rb")
                handle = _Handle(flags)
                fobj = os.fdopen(fd, mode)
                handle.readfile = handle.writefile = fobj
                return handle
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno)

        def remove(self, path):
            try:
                os.remove(self._real(path))
                return SFTP_OK
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno)

        def rename(self, old, new):
            if os.path.exists(self._real(new)):
                return SFTP_FAILURE
            os.rename(self._real(old), self._real(new))
            server.renames.append((old, new))
            return SFTP_OK

        def posix_rename(self, old, new):
            os.replace(self._real(old), self._real(new))
            server.renames.append((old, new))
            return SFTP_OK

        def mkdir(self, path, attr):
            try:
                os.mkdir(self._real(path))
                return SFTP_OK
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno)

    return Files


class LoopbackSftpServer:
    def __init__(self, root: str, *, username: str = "planner-drop", password: str = "drop-secret"):
        self.root = root
        self.username, self.password = username, password
        self.host_key = paramiko.ECDSAKey.generate()
        self.fail_uploads = 0  # the next N file opens for writing are refused
        self.allow_uploads: int | None = None  # or: this many more are accepted, every later one refused
        self.refused = 0
        self.renames: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def known_host(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def _serve(self):
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(client)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", SFTPServer, _files(self))
            try:
                transport.start_server(server=_Auth(self))
            except (paramiko.SSHException, EOFError, OSError):
                continue
            self._transports.append(transport)

    def files(self, subdir: str = "") -> list[str]:
        path = os.path.join(self.root, subdir)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    def shutdown(self):
        self._stop = True
        self.sock.close()
        for transport in self._transports:
            transport.close()
