"""The Inventory Planner sandbox's file side: it reads a custom source's files the way the vendor
does and keeps what it imported, for tests to assert on. Imports nothing of the product.

CSV connector: each connection is one warehouse; its products and sales orders files (and purchase
orders, optional: the stock on order, lines keyed by id + line_item_id) are fetched with GET from permanent URLs, with HTTP basic auth when a username is
given; the files always hold everything, so a product or sales order missing from a file is deleted.
Advanced CSV connector: files in the SFTP drop, one subdirectory per entity, read entity by entity
(warehouses and variants before what refers to them), oldest file first; a file with a missing
required column or an unsupported column is not processed at all; REMOVED=true soft-removes a row;
returns are sales rows with a negative quantity. Names starting with "." (uploads in progress) are
never read, and a file is processed once.

Rows naming a SKU (CSV) or VARIANT_ID (Advanced) that the planner's variants do not know are not
imported and are reported under `unknown_skus`. The planner's variants are those of its files plus
those the vendor app holds through its API (`app.variants`, or `app.known_skus()`).

`import_feeds(app, body)` is what `POST /_sandbox/import` runs (the app keeps each answer);
`imported(app)` is the planner's current view of the files' data; `reset_feeds(app)` forgets it.
"""
from __future__ import annotations

import base64
import csv
import io
import posixpath
import threading
import urllib.error
import urllib.request

_LOCK = threading.Lock()

# Documented columns per Advanced CSV file: (required, optional).
ADVANCED_FILES = {
    "warehouses": ({"WAREHOUSE_ID", "DISPLAY_NAME", "UPDATED_AT", "REMOVED"},
                   {"CURRENCY", "BILLING_ADDRESS", "SHIPPING_ADDRESS"}),
    "vendors": ({"VENDOR_ID", "DISPLAY_NAME", "CURRENCY", "REMOVED", "UPDATED_AT"},
                {"DISCOUNT", "TAX", "EMAIL", "VENDOR_ADDRESS"}),
    "variants": ({"VARIANT_ID", "SKU", "TITLE", "BARCODE", "PRODUCT_ID", "PRICE", "CREATED_AT", "UPDATED_AT", "REMOVED"},
                 {"TYPE", "IMAGE", "HANDLE"}),
    "variant_warehouses": ({"VARIANT_ID", "WAREHOUSE_ID", "IN_STOCK", "REMOVED", "UPDATED_AT"},
                           {"GROSS_WEIGHT", "MIN_STOCK", "MAX_STOCK", "MAX_ORDER", "TRANSFER_UOM"}),
    "variant_vendors": ({"VARIANT_ID", "VENDOR_ID", "REMOVED", "UPDATED_AT"},
                        {"COST_PRICE", "LANDING_COST_PRICE", "VENDOR_REFERENCE", "VENDOR_NAME", "MOQ", "UOM"}),
    "sales_orders": ({"ORDER_ID", "ID", "VARIANT_ID", "WAREHOUSE", "CURRENCY", "QUANTITY", "PRICE", "CREATED_AT",
                      "REMOVED", "UPDATED_AT"},
                     {"REFERENCE", "REFERENCE2", "ORIGINAL_COST_PRICE", "CUSTOMER", "DISCOUNT", "TAX", "TAX_INCLUDED",
                      "SHIPPING", "SHIPPING_TAX", "CANCELLED"}),
}
ADVANCED_ORDER = ("warehouses", "vendors", "variants", "variant_warehouses", "variant_vendors", "sales_orders")
ADVANCED_KEYS = {
    "warehouses": ("WAREHOUSE_ID",), "vendors": ("VENDOR_ID",), "variants": ("VARIANT_ID",),
    "variant_warehouses": ("VARIANT_ID", "WAREHOUSE_ID"), "variant_vendors": ("VARIANT_ID", "VENDOR_ID"),
    "sales_orders": ("ORDER_ID",),
}
CSV_REQUIRED = {
    "products": {"product_id", "title", "price", "SKU", "created_at", "stock_quantity"},
    "sales_orders": {"order_id", "created_at", "sku", "quantity", "price"},
    # Optional file: stock on order (the sandbox's reading; the help article names no columns).
    "purchase_orders": {"id", "sku", "replenishment"},
}


def _state(app) -> dict:
    """The import state kept on the vendor app; a reset of the app (which replaces its `imported`
    list) starts it afresh."""
    generation = id(getattr(app, "imported", None))
    with _LOCK:
        state = getattr(app, "feed_state", None)
        if state is None or state["generation"] != generation:
            state = {"csv": {}, "advanced": {kind: {} for kind in ADVANCED_ORDER}, "processed": set(), "log": [],
                     "generation": generation}
            app.feed_state = state
        return state


def reset_feeds(app) -> None:
    with _LOCK:
        app.feed_state = None


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _known_skus(app, state) -> set[str]:
    known = {sku for w in state["csv"].values() for sku in w.get("products", {})}
    known |= {row["VARIANT_ID"] for row in state["advanced"]["variants"].values() if not _truthy(row["REMOVED"])}
    extra = getattr(app, "known_skus", None)
    if callable(extra):
        known |= set(extra())
    variants = getattr(app, "variants", None)  # the variants the planner holds through its API
    if isinstance(variants, dict):
        known |= {v.get("sku") for v in variants.values() if isinstance(v, dict) and v.get("sku")}
    return known


def _read_csv(data: bytes) -> tuple[list[str], list[dict]]:
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return list(reader.fieldnames or []), list(reader)


# --- CSV connector ---------------------------------------------------------------------------


def _fetch(url: str, username: str, password: str, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method="GET")
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def _import_csv_connection(app, state, conf: dict) -> dict:
    warehouse = str(conf.get("warehouse") or "")
    result = {}
    current = state["csv"].setdefault(warehouse, {"products": {}, "sales_orders": {}})
    current.setdefault("purchase_orders", {})
    for kind in ("products", "sales_orders", "purchase_orders"):
        url = conf.get(f"{kind}_url")
        if not url:
            continue
        status, body = _fetch(url, str(conf.get("username") or ""), str(conf.get("password") or ""))
        if status != 200:
            result[kind] = {"error": f"GET answered {status}", "status": status}
            continue
        columns, rows = _read_csv(body)
        missing = CSV_REQUIRED[kind] - set(columns)
        if missing:
            result[kind] = {"error": f"missing required columns {sorted(missing)}", "status": status}
            continue
        if kind == "products":
            fresh = {row["SKU"]: row for row in rows}
            deleted = sorted(set(current["products"]) - set(fresh))
            current["products"] = fresh
            result[kind] = {"rows": len(fresh), "deleted": deleted, "bytes": len(body)}
        else:
            known = _known_skus(app, state)
            fresh, unknown = {}, set()
            order_key, line_key = ("order_id", "line_id") if kind == "sales_orders" else ("id", "line_item_id")
            for row in rows:
                if row["sku"] not in known:
                    unknown.add(row["sku"])
                    continue
                fresh[(row[order_key], row.get(line_key) or row["sku"])] = row
            deleted = sorted(f"{a}/{b}" for a, b in set(current[kind]) - set(fresh))
            current[kind] = fresh
            result[kind] = {"rows": len(fresh), "deleted": deleted, "unknown_skus": sorted(unknown), "bytes": len(body)}
    return result


# --- Advanced CSV over SFTP ----------------------------------------------------------------------


def _sftp_session(conf: dict):
    import paramiko

    transport = paramiko.Transport((str(conf["host"]), int(conf.get("port") or 22)))
    transport.start_client(timeout=15)
    expected = str(conf.get("host_key") or "")
    if expected:
        parts = expected.split()
        server = transport.get_remote_server_key()
        if f"{server.get_name()} {server.get_base64()}" not in " ".join(parts):
            transport.close()
            raise ValueError("the SFTP server's host key is not the expected one")
    if conf.get("private_key"):
        key = None
        for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                key = kind.from_private_key(io.StringIO(conf["private_key"]))
                break
            except (paramiko.SSHException, ValueError):
                continue
        transport.auth_publickey(str(conf.get("username") or ""), key)
    else:
        transport.auth_password(str(conf.get("username") or ""), str(conf.get("password") or ""))
    return transport, paramiko.SFTPClient.from_transport(transport)


def _apply_advanced(app, state, kind: str, columns: list[str], rows: list[dict]) -> dict:
    required, optional = ADVANCED_FILES[kind]
    missing, unsupported = required - set(columns), set(columns) - required - optional
    if missing or unsupported:
        return {"error": "file not processed", "missing": sorted(missing), "unsupported": sorted(unsupported)}
    table = state["advanced"][kind]
    keys = ADVANCED_KEYS[kind]
    counts = {"rows": 0, "removed": 0, "unknown_skus": []}
    known = _known_skus(app, state) if kind in ("sales_orders", "variant_warehouses", "variant_vendors") else None
    unknown = set()
    for row in rows:
        if known is not None and row["VARIANT_ID"] not in known:
            unknown.add(row["VARIANT_ID"])
            continue
        table[tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]] = dict(row)
        counts["rows"] += 1
        counts["removed"] += _truthy(row["REMOVED"])
    counts["unknown_skus"] = sorted(unknown)
    return counts


def _import_sftp(app, state, conf: dict) -> dict:
    transport, sftp = _sftp_session(conf)
    result: dict = {"files": []}
    try:
        root = str(conf.get("remote_dir") or "/")
        for kind in ADVANCED_ORDER:
            directory = posixpath.join(root, kind)
            try:
                entries = sftp.listdir_attr(directory)
            except FileNotFoundError:
                continue
            entries = sorted((e for e in entries if not e.filename.startswith(".")),
                             key=lambda e: (e.st_mtime or 0, e.filename))
            for entry in entries:
                path = posixpath.join(directory, entry.filename)
                if path in state["processed"]:
                    continue
                with sftp.open(path, "rb") as handle:
                    data = handle.read()
                state["processed"].add(path)
                columns, rows = _read_csv(data)
                outcome = _apply_advanced(app, state, kind, columns, rows)
                result["files"].append({"name": entry.filename, "kind": kind, **outcome})
                summary = result.setdefault(kind, {"rows": 0, "removed": 0, "unknown_skus": [], "errors": []})
                if "error" in outcome:
                    summary["errors"].append({"file": entry.filename, **outcome})
                    continue
                summary["rows"] += outcome["rows"]
                summary["removed"] += outcome["removed"]
                summary["unknown_skus"] = sorted(set(summary["unknown_skus"]) | set(outcome["unknown_skus"]))
    finally:
        sftp.close()
        transport.close()
    return result


def import_feeds(app, body) -> dict:
    """Run the planner's import: {"csv": [{"warehouse", "products_url", "sales_orders_url",
    "username", "password"}], "sftp": {"host", "port", "username", "password" | "private_key",
    "remote_dir", "host_key"}} → what was imported, per connection and file kind."""
    body = body if isinstance(body, dict) else {}
    state = _state(app)
    result: dict = {}
    configs = body.get("csv") or []
    if isinstance(configs, dict):
        configs = [configs]
    if configs:
        result["csv"] = {}
        for conf in configs:
            if isinstance(conf, dict):
                result["csv"][str(conf.get("warehouse") or "")] = _import_csv_connection(app, state, conf)
    if isinstance(body.get("sftp"), dict):
        try:
            result["sftp"] = _import_sftp(app, state, body["sftp"])
        except Exception as exc:  # the vendor's import fails as a whole when the drop cannot be read
            result["sftp"] = {"error": f"{type(exc).__name__}: {exc}"}
    state["log"].append(result)
    return result


def imported(app) -> dict:
    """What the planner holds from the files: CSV connections per warehouse, Advanced tables per entity."""
    state = _state(app)
    return {
        "csv": {w: {"products": list(t["products"].values()), "sales_orders": list(t["sales_orders"].values()),
                    "purchase_orders": list(t.get("purchase_orders", {}).values())}
                for w, t in state["csv"].items()},
        "advanced": {kind: list(rows.values()) for kind, rows in state["advanced"].items()},
        "imports": len(state["log"]),
    }
