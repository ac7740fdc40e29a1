"""An Inventory Planner connection's feed settings (Connection.settings and encrypted credentials),
read in one place with their defaults.

settings keys: `warehouses` (ERP warehouses the planner plans for; default: every warehouse the
location and depot mappings name), `currency` (the planner connection's currency), `feed_username`
(basic auth user of the CSV URLs, default the connection code), `sftp_host`, `sftp_port` (22),
`sftp_username`, `sftp_remote_dir`, `sftp_host_key` (the server's public key as a known_hosts entry:
"ssh-ed25519 AAAA…", optionally preceded by the host), `upload_every_hours` (24).
credentials: `feed_password`, `sftp_password` or `sftp_private_key` (OpenSSH PEM).
"""
from __future__ import annotations

import secrets as token_source
from dataclasses import dataclass

from django.conf import settings as django_settings

from integrations.models import Connection


def _defaults() -> dict:
    return {
        "quiet_hours": getattr(django_settings, "INVENTORY_QUIET_HOURS", ""),
        "cursor_lag_seconds": 120,
        "upload_attempts": 3,
        "upload_backoff": 2.0,
        "sftp_timeout": 20.0,
        **getattr(django_settings, "PLANNER_FEEDS", {}),
    }


def feed_option(name: str):
    """A global feed option: settings.PLANNER_FEEDS[name], else the default above."""
    return _defaults()[name]


@dataclass(frozen=True)
class SftpTarget:
    host: str
    port: int
    username: str
    remote_dir: str
    host_key: str
    password: str = ""
    private_key: str = ""

    def __repr__(self) -> str:  # never the password or the key
        return f"SftpTarget({self.username}@{self.host}:{self.port}{self.remote_dir})"


def planner_warehouses(connection: Connection) -> list[str]:
    configured = (connection.settings or {}).get("warehouses")
    if configured:
        return sorted({str(w) for w in configured if str(w).strip()})
    from mappings.models import DepotMapping, LocationMapping

    found = set(LocationMapping.objects.filter(active=True).values_list("erp_warehouse", flat=True))
    found |= set(DepotMapping.objects.filter(active=True).values_list("depot_code", flat=True))
    return sorted(w for w in found if w)


def planner_currency(connection: Connection) -> str:
    return str((connection.settings or {}).get("currency") or "")


def feed_username(connection: Connection) -> str:
    return str((connection.settings or {}).get("feed_username") or connection.code)


def feed_password_set(*, connection: Connection) -> str:
    """A new feed password for the CSV URLs, stored encrypted; returned this once, never shown again."""
    password = token_source.token_urlsafe(24)
    connection.credentials = {**(connection.credentials or {}), "feed_password": password}
    connection._change_reason = "feed password replaced"
    connection.save(update_fields=["credentials", "updated_at"])
    return password


def sftp_target(connection: Connection) -> SftpTarget | None:
    """The SFTP drop of an Advanced CSV connection, or None when it has none configured."""
    conf = connection.settings or {}
    if not conf.get("sftp_host"):
        return None
    return SftpTarget(
        host=str(conf["sftp_host"]), port=int(conf.get("sftp_port") or 22),
        username=str(conf.get("sftp_username") or ""), remote_dir=str(conf.get("sftp_remote_dir") or "/"),
        host_key=str(conf.get("sftp_host_key") or ""), password=connection.secret("sftp_password"),
        private_key=connection.secret("sftp_private_key"),
    )
