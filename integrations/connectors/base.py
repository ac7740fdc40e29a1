"""What every connector shares: typed errors, a retrying requests.Session and the ERP interface.

Connectors raise `TransientError` (429, 5xx, timeouts, record locks: worth retrying) or
`PermanentError` (the request itself is wrong: retrying will not help). Flows decide what of
those becomes an exception for a person.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import fcntl
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import requests

log = logging.getLogger("ledgerline.connectors")


class ConnectorError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str = "", body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class TransientError(ConnectorError):
    """Worth retrying later: rate limited, server error, timeout, record locked."""


class RateLimited(TransientError):
    def __init__(self, message: str, *, retry_after: float, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RecordLocked(TransientError):
    pass


class PermanentError(ConnectorError):
    """The request is wrong (validation, unknown reference): a person must fix the data."""


class NotFound(PermanentError):
    pass


class Conflict(PermanentError):
    """409: duplicate external reference, or a version conflict."""


@dataclass
class RetryStats:
    """Counters a benchmark or a run summary can read."""

    requests: int = 0
    rate_limited: int = 0
    transient_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """Retry-After is delta-seconds or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else default


class SharedPacer:
    """Strict spacing shared by every process on the host (the q2 workers): each request reserves the
    next free slot in a small file under an exclusive lock, so a slot one worker leaves unused while
    it writes to the database is taken by another instead of being lost."""

    def __init__(self, per_second: float, path, *, clock: Callable[[], float] = time.time):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.path = str(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _reserve(self) -> tuple[float, float]:
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(self._fd, 32, 0).strip()
                now = self.clock()
                try:
                    booked = float(raw or 0)
                except ValueError:
                    booked = 0.0
                if booked > now + 60:  # the clock went back: start again from now
                    booked = 0.0
                slot = max(now, booked)
                os.pwrite(self._fd, f"{slot + self.interval:.6f}".ljust(32).encode(), 0)
                return now, slot
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        if not self.interval:
            return
        now, slot = self._reserve()
        if slot > now:
            sleep(slot - now)


class RedisPacer:
    """The same strict spacing for every worker on every host, in Redis: a Lua script books the next
    free slot of one key atomically, on Redis' own clock (hosts' clocks never compared), and the
    caller sleeps until its slot. A token bucket one token deep (GCRA): the requests started in any
    one-second window never exceed the rate, and a slot nobody used is gone, never saved up for a
    burst the ERP would answer with 429s."""

    SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local booked = tonumber(redis.call('GET', KEYS[1]) or '0')
    if booked > now + 60 then booked = 0 end
    local slot = math.max(now, booked)
    redis.call('SET', KEYS[1], string.format('%.6f', slot + tonumber(ARGV[1])), 'EX', 120)
    return {string.format('%.6f', now), string.format('%.6f', slot)}
    """

    def __init__(self, per_second: float, url: str, key: str, *, client=None):
        import redis

        self.interval = 1.0 / per_second if per_second else 0.0
        self.key = key
        self.client = client or redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._book = self.client.register_script(self.SCRIPT)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        if not self.interval:
            return
        try:
            now, slot = (float(v) for v in self._book(keys=[self.key], args=[f"{self.interval:.6f}"]))
        except Exception as exc:  # the budget must hold: without it no request goes out, and it is retried
            raise TransientError(f"the shared ERP budget in Redis did not answer: {exc}") from exc
        if slot > now:
            sleep(slot - now)


class PostgresPacer:
    """The same strict spacing for every worker on every host, in PostgreSQL: one row per ERP endpoint
    (integrations_erpbudget) whose next free slot each request books by one atomic UPDATE on the
    database's own clock. On a connection of its own in autocommit, so a slot is never held by a
    caller's open transaction."""

    BOOK = ("UPDATE integrations_erpbudget SET next_slot = GREATEST("
            "CASE WHEN next_slot > EXTRACT(EPOCH FROM clock_timestamp()) + 60 THEN 0 ELSE next_slot END, "
            "EXTRACT(EPOCH FROM clock_timestamp())) + %s WHERE endpoint = %s "
            "RETURNING EXTRACT(EPOCH FROM clock_timestamp())::float8, next_slot - %s")
    CREATE = "INSERT INTO integrations_erpbudget (endpoint, next_slot) VALUES (%s, 0) ON CONFLICT (endpoint) DO NOTHING"

    def __init__(self, per_second: float, conninfo: str, endpoint: str):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.conninfo = conninfo
        self.endpoint = endpoint[:200]
        self._local = threading.local()

    def _connection(self):
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or getattr(self._local, "pid", None) != os.getpid():
            conn = psycopg.connect(self.conninfo, autocommit=True)
            conn.execute(self.CREATE, (self.endpoint,))
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _reserve(self) -> tuple[float, float]:
        try:
            row = self._connection().execute(self.BOOK, (self.interval, self.endpoint, self.interval)).fetchone()
        except Exception as exc:  # the budget must hold: without it no request goes out, and it is retried
            self._local.conn = None  # a broken connection is opened again by the next request
            raise TransientError(f"the shared ERP budget in PostgreSQL did not answer: {exc}") from exc
        return float(row[0]), float(row[1])

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        if not self.interval:
            return
        now, slot = self._reserve()
        if slot > now:
            sleep(slot - now)


class RetryingClient:
    """A requests.Session wrapper: classifies responses and retries transient failures with backoff.

    Subclasses implement `classify(response)` to raise the vendor's typed errors.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: SharedPacer | RedisPacer | PostgresPacer | None = None,
    ):
        self.pacer = pacer
        # A session of its own reads the environment's proxy and CA-bundle settings once per host
        # (see _environment), not on every request as requests does: walking os.environ for them was
        # about a twentieth of a task worker's CPU in a flash sale. A session passed in is left as is.
        self._environments: dict[str, dict] | None = None
        if session is None:
            session = requests.Session()
            session.trust_env, self._environments = False, {}
        self.session = session
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.stats = RetryStats()

    def classify(self, response: requests.Response) -> None:  # pragma: no cover - overridden
        if response.status_code == 429:
            raise RateLimited("rate limited", status=429, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 500:
            raise TransientError(f"server error {response.status_code}", status=response.status_code)
        if response.status_code >= 400:
            raise PermanentError(f"request failed {response.status_code}: {response.text[:300]}", status=response.status_code)

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return delay * (0.5 + random.random() / 2)  # jitter so workers do not retry in lockstep

    def _environment(self, url: str) -> dict:
        """What requests would take from the environment for this URL (HTTP(S)_PROXY and NO_PROXY,
        REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE), read on the first request to its host and kept. A
        client talks to a host or two, whose settings do not change while the process runs; the one
        thing not carried over is a ~/.netrc login, which no connector relies on (each sends its
        vendor's own credentials)."""
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        found = self._environments.get(origin)
        if found is None:
            reader = requests.Session()  # trust_env, as requests.Session() by default
            merged = reader.merge_environment_settings(origin, {}, None, None, None)
            reader.close()
            found = self._environments[origin] = {"proxies": merged["proxies"], "verify": merged["verify"]}
        return found

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if self._environments is not None:
            environment = self._environment(url)
            kwargs.setdefault("proxies", environment["proxies"])
            if kwargs.get("verify") is None:
                kwargs["verify"] = environment["verify"]
        attempt = 0
        while True:
            attempt += 1
            self.stats.bump("requests")
            if self.pacer is not None:
                self.pacer.wait(self.sleep)
            try:
                response = self.session.request(method, url, **kwargs)
                self.classify(response)
                return response
            except requests.Timeout as exc:
                error: TransientError = TransientError(f"timeout calling {url}: {exc}")
            except requests.ConnectionError as exc:
                error = TransientError(f"cannot reach {url}: {exc}")
            except TransientError as exc:
                error = exc
            if attempt >= self.max_attempts:
                raise error
            if isinstance(error, RateLimited):
                self.stats.bump("rate_limited")
                delay = error.retry_after
            else:
                self.stats.bump("transient_retries")
                delay = self.backoff(attempt)
            log.info("retrying %s %s in %.2fs after: %s", method, url, delay, error)
            self.sleep(delay)


# --- The ERP interface: the REST ERP and Prima both implement it --------------------------------


@dataclass(frozen=True)
class ErpCustomer:
    id: str
    email: str
    name: str = ""
    external_reference: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ErpSalesOrderLine:
    item_code: str
    description: str
    quantity: int
    unit_price: str  # decimal string in major units, exact to the currency's minor unit ("12.34")
    line_total: str  # decimal string, quantity * unit_price minus line discount
    tax_code: str = ""
    tax_amount: str = "0"
    kind: str = "item"  # item | shipping | discount | duty | tip | gift_card | rounding
    tax_rate: str = ""  # the storefront's rate as a decimal fraction ("0.2"), for people and checks
    line_reference: str = ""  # the storefront's line id, which the ERP gives back on dispatch lines


@dataclass(frozen=True)
class ErpSalesOrderRequest:
    external_reference: str
    customer_id: str
    currency: str
    depot: str
    order_date: str  # ISO date
    lines: tuple[ErpSalesOrderLine, ...]
    total: str  # the sum of the line totals (net, or gross when prices_include_tax)
    customer_reference: str = ""  # the storefront's order number, for people
    # True when line totals are gross (Shopify taxes_included, commercetools tax-included prices):
    # tax_amount is then the tax contained in the line, not added to it.
    prices_include_tax: bool = False
    tax_total: str = "0"  # the sum of the lines' tax amounts
    gross_total: str = ""  # what the customer pays: total + tax_total (or total when tax is included)
    # In a batch to an ERP with CUSTOMERS_IN_BATCH, a buyer not known yet goes with the document
    # instead of customer_id: {"email", "name", "external_reference", "country", "phone", "match_on"};
    # the ERP matches or creates the account while it books the order, in the same request.
    new_customer: dict | None = None

    def claimed_totals(self) -> dict[str, str]:
        """{"tax_total", "gross_total"} for the ERP to check, when the caller filled them in: a request
        built without them (gross_total empty, tax_total left at its "0" default) is sent as older
        clients sent it."""
        claimed = {}
        if self.tax_total and (self.gross_total or self.tax_total != "0"):
            claimed["tax_total"] = self.tax_total
        if self.gross_total:
            claimed["gross_total"] = self.gross_total
        return claimed


@dataclass(frozen=True)
class ErpSalesOrder:
    id: str
    external_reference: str
    status: str = ""  # the ERP's words: open, cancelled, dispatched, …
    total: str = ""  # line totals as the ERP booked them
    tax_total: str = ""  # tax as the ERP booked it
    gross_total: str = ""  # the ERP's own gross total of the order (compared with the storefront's)
    # True when create_sales_order found the order already there (the ERP answered "duplicate
    # reference"): an earlier attempt or another worker created it, nothing new was booked.
    already_existed: bool = False
    customer_id: str = ""  # the account the ERP booked it under
    # For a document that carried its new customer: the field the ERP matched an account by, or
    # customer_created when it opened a new one.
    customer_matched_on: str = ""
    customer_created: bool = False


# --- ERP capabilities: each a typed interface; a connector declares which it implements ------------

SALES_ORDERS = "sales_orders"
CUSTOMERS = "customers"
ITEMS = "items"
STOCK = "stock"
DISPATCHES = "dispatches"
CREDIT_MEMOS = "credit_memos"
JOURNALS = "journals"
PURCHASE_ORDERS = "purchase_orders"
ERP_CAPABILITIES = (SALES_ORDERS, CUSTOMERS, ITEMS, STOCK, DISPATCHES, CREDIT_MEMOS, JOURNALS, PURCHASE_ORDERS)
# What only some ERPs offer, and the flows use when it is there (fewer requests per order).
CUSTOMER_MATCH_OR_CREATE = "customer_match_or_create"
BATCH_SALES_ORDERS = "batch_sales_orders"
# A batch document may carry a buyer the ERP does not know yet (matched or created as it is booked).
CUSTOMERS_IN_BATCH = "customers_in_batch"
STOCK_EXPORT = "stock_export"
from .catalogue import ITEM_MASTER, ItemMaster  # noqa: E402  (the item master has its own module)

OPTIONAL_ERP_CAPABILITIES = (CUSTOMER_MATCH_OR_CREATE, BATCH_SALES_ORDERS, CUSTOMERS_IN_BATCH, ITEM_MASTER,
                             STOCK_EXPORT)


class SalesOrders(Protocol):
    def find_sales_order(self, external_reference: str) -> ErpSalesOrder | None: ...

    def create_sales_order(self, order: ErpSalesOrderRequest) -> ErpSalesOrder:
        """Safe to call twice for one external reference (the existing order is returned)."""
        ...

    def get_sales_order(self, order_id: str) -> ErpSalesOrder: ...

    def cancel_sales_order(self, order_id: str, *, reason: str = "") -> ErpSalesOrder:
        """Cancel an order nothing was dispatched from. Raises Conflict (code "already_dispatched")
        when the ERP refuses because it was (partly) dispatched."""
        ...


class Customers(Protocol):
    def find_customers(self, *, email: str = "", external_reference: str = "", phone: str = "") -> list[ErpCustomer]: ...

    def create_customer(self, *, email: str, name: str, external_reference: str, country: str = "",
                        phone: str = "", guest: bool = False) -> ErpCustomer:
        """Open an account. The ERP needs an e-mail or a phone, except for a guest / cash-sale
        account (guest=True), which is shared by guest orders and needs neither."""
        ...

    def get_customer(self, customer_id: str) -> ErpCustomer | None: ...


class AmbiguousCustomer(Conflict):
    """A match-or-create found several accounts for one field: a person must choose (or merge)."""

    def __init__(self, message: str, *, candidates: list[ErpCustomer], **kw):
        super().__init__(message, **kw)
        self.candidates = candidates


class CustomerMatchOrCreate(Protocol):
    def match_or_create_customer(self, *, email: str, name: str, external_reference: str, country: str = "",
                                 phone: str = "", guest: bool = False,
                                 match_on: tuple[str, ...] = ("external_reference", "email"),
                                 ) -> tuple[ErpCustomer, str]:
        """One request: the existing account matched by the first field of match_on that finds one
        (returned with that field's name), else a new account (returned with ""). Several accounts
        for one field raise AmbiguousCustomer."""
        ...


class BatchSalesOrders(Protocol):
    max_batch: int

    def create_sales_orders(self, orders: list[ErpSalesOrderRequest]) -> list[ErpSalesOrder | PermanentError]:
        """Several Sales Orders in one request, each created once per external reference: a result per
        order, in order (an ErpSalesOrder, already_existed when it was there, or the PermanentError
        that refused that order alone). A failure of the request itself raises as usual."""
        ...


class CustomersInBatch(BatchSalesOrders, Protocol):
    """create_sales_orders takes documents with new_customer instead of customer_id: the ERP matches
    the account by the fields of its match_on in turn, else opens one, and books the order under it
    (the answer's customer_id, customer_matched_on, customer_created). Several accounts for one field
    refuse that document alone with AmbiguousCustomer; a document the ERP refuses opens no account."""


class Items(Protocol):
    def item_exists(self, item_code: str) -> bool: ...

    def list_depots(self) -> list[str]: ...


class Stock(Protocol):
    def get_stock(self, *, depot: str | None = None) -> list[dict]:
        """Rows {item_code, depot, on_hand, allocated, reserved, states: {...}}."""
        ...


class StockExport(Protocol):
    def export_stock(self, *, depot: str) -> Iterator[dict]:
        """Every stock row of one depot in one streamed request (the rows get_stock gives), for a
        large catalogue: thousands of pages cost more than the rate limit allows a check."""
        ...


# --- Dispatches: what the warehouse confirmed as gone, read by cursor ----------------------------


@dataclass(frozen=True)
class ErpDispatchLine:
    item_code: str
    quantity: int
    line_reference: str = ""  # the sales-order line's reference (the storefront line id we sent), when known


@dataclass(frozen=True)
class ErpDispatch:
    id: str
    sales_order_id: str
    external_reference: str  # the sales order's external reference (ours: the storefront order)
    status: str  # the ERP's word; only "confirmed" dispatches may reach a storefront
    lines: tuple[ErpDispatchLine, ...]
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    depot: str = ""
    dispatched_at: str = ""  # ISO 8601
    modified_at: str = ""  # ISO 8601; the cursor moves by it


@dataclass(frozen=True)
class DispatchPage:
    dispatches: list[ErpDispatch]
    cursor: str  # pass back to read on; unchanged when nothing new
    more: bool = False


class Dispatches(Protocol):
    def dispatches_since(self, cursor: str = "", *, limit: int = 100) -> DispatchPage:
        """Dispatches created or changed after `cursor` (opaque; "" = from the start), oldest first.
        Re-reading from an older cursor returns the same dispatches again (the caller dedupes by id)."""
        ...


# --- Credit memos: one per storefront refund ----------------------------------------------------


@dataclass(frozen=True)
class ErpCreditMemoRequest:
    external_reference: str  # the refund's idempotency key: one memo per storefront refund
    sales_order_id: str
    customer_id: str
    currency: str
    lines: tuple[ErpSalesOrderLine, ...]  # as on the sales order, amounts positive (what is credited)
    total: str
    tax_total: str = "0"
    gross_total: str = ""
    prices_include_tax: bool = False
    reason: str = ""
    restock: bool = False  # returned goods go back on stock in the order's depot


@dataclass(frozen=True)
class ErpCreditMemo:
    id: str
    external_reference: str
    sales_order_id: str = ""
    status: str = ""
    total: str = ""
    tax_total: str = ""
    gross_total: str = ""  # the ERP's own booked gross total of the memo


class CreditMemos(Protocol):
    def find_credit_memo(self, external_reference: str) -> ErpCreditMemo | None: ...

    def create_credit_memo(self, memo: ErpCreditMemoRequest) -> ErpCreditMemo:
        """Safe to call twice for one external reference (the existing memo is returned)."""
        ...


# --- Journals: payouts, fees and chargebacks booked by finance ---------------------------------


@dataclass(frozen=True)
class ErpJournalLine:
    account: str
    debit: str = "0"  # decimal strings in major units, exact to the currency's minor unit
    credit: str = "0"
    description: str = ""
    reference: str = ""  # e.g. the storefront order or payout this line is about


@dataclass(frozen=True)
class ErpJournalRequest:
    external_reference: str
    date: str  # ISO date
    currency: str
    lines: tuple[ErpJournalLine, ...]  # debits must equal credits
    description: str = ""


@dataclass(frozen=True)
class ErpJournal:
    id: str
    external_reference: str
    status: str = ""
    debit_total: str = ""
    credit_total: str = ""


class Journals(Protocol):
    def find_journal(self, external_reference: str) -> ErpJournal | None: ...

    def create_journal(self, journal: ErpJournalRequest) -> ErpJournal:
        """Safe to call twice for one external reference. Raises PermanentError (code "unbalanced")
        when debits and credits differ: the ERP never books half a journal."""
        ...


# --- Purchase orders: replenishment from the planner -------------------------------------------


@dataclass(frozen=True)
class ErpPurchaseOrderLine:
    item_code: str
    quantity: int
    unit_cost: str = ""  # decimal string, major units
    received_quantity: int = 0


@dataclass(frozen=True)
class ErpPurchaseOrderRequest:
    external_reference: str
    supplier: str
    depot: str
    currency: str
    lines: tuple[ErpPurchaseOrderLine, ...]
    expected_date: str = ""  # ISO date
    note: str = ""


@dataclass(frozen=True)
class ErpPurchaseOrder:
    id: str
    external_reference: str
    status: str = ""  # open, partially_received, received, cancelled
    supplier: str = ""
    depot: str = ""
    lines: tuple[ErpPurchaseOrderLine, ...] = ()
    expected_date: str = ""
    modified_at: str = ""


@dataclass(frozen=True)
class PurchaseOrderPage:
    purchase_orders: list[ErpPurchaseOrder]
    cursor: str
    more: bool = False


class PurchaseOrders(Protocol):
    def find_purchase_order(self, external_reference: str) -> ErpPurchaseOrder | None: ...

    def create_purchase_order(self, order: ErpPurchaseOrderRequest) -> ErpPurchaseOrder:
        """Safe to call twice for one external reference."""
        ...

    def purchase_orders_since(self, cursor: str = "", *, limit: int = 100) -> PurchaseOrderPage:
        """Purchase orders created or changed (received, cancelled) after `cursor`, oldest first."""
        ...


CAPABILITY_PROTOCOLS = {SALES_ORDERS: SalesOrders, CUSTOMERS: Customers, ITEMS: Items, STOCK: Stock,
                        DISPATCHES: Dispatches, CREDIT_MEMOS: CreditMemos, JOURNALS: Journals,
                        PURCHASE_ORDERS: PurchaseOrders, CUSTOMER_MATCH_OR_CREATE: CustomerMatchOrCreate,
                        BATCH_SALES_ORDERS: BatchSalesOrders, CUSTOMERS_IN_BATCH: CustomersInBatch,
                        ITEM_MASTER: ItemMaster,
                        STOCK_EXPORT: StockExport}


class ErpConnector(SalesOrders, Customers, Items, Stock, Protocol):
    """What the order and inventory flows need from an ERP; the REST ERP and Prima implement it.
    Later flows ask `supports(erp, DISPATCHES)` etc. before using a capability."""

    stats: RetryStats
    capabilities: frozenset[str]


class UnsupportedCapability(PermanentError):
    """The configured ERP does not offer what a flow needs (it is an owned exception, not a crash)."""


def supports(connector, capability: str) -> bool:
    return capability in getattr(connector, "capabilities", frozenset())


def require(connector, capability: str) -> None:
    if not supports(connector, capability):
        raise UnsupportedCapability(
            f"{type(connector).__name__} does not support {capability.replace('_', ' ')}", code="unsupported")



# --- Helpers the ERP connectors share for the later capabilities ---------------------------------


def claimed_totals(tax_total: str, gross_total: str) -> dict[str, str]:
    """{"tax_total", "gross_total"} for the ERP to check, as ErpSalesOrderRequest.claimed_totals: what
    the caller left at its defaults ("0", "") is not sent."""
    claimed = {}
    if tax_total and (gross_total or tax_total != "0"):
        claimed["tax_total"] = tax_total
    if gross_total:
        claimed["gross_total"] = gross_total
    return claimed


def encode_cursor(since: str, seen: Iterable[str]) -> str:
    """The opaque cursor of a read by modification time: the last modified time read and the ids read
    at exactly that time ("" before anything was read)."""
    ids = sorted(set(seen))
    if not since and not ids:
        return ""
    raw = json.dumps({"since": since, "ids": ids}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, set[str]]:
    if not cursor:
        return "", set()
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        since, ids = data["since"], data["ids"]
        if not isinstance(since, str) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(cursor)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise PermanentError(f"{cursor[:40]!r} is not a cursor this connector gave", code="invalid_cursor") from None
    return since, set(ids)


def read_since(fetch_page: Callable[[str, int], tuple[list, bool]], cursor: str, limit: int, *,
               stamp: Callable[[object], str], key: Callable[[object], str]) -> tuple[list, str, bool]:
    """Read what changed after `cursor` from a listing by modification time, oldest first, ties by id,
    whose `since` is inclusive: (rows, new cursor, more).

    `fetch_page(since, page)` answers (rows, more_pages). ERPs keep modification times in whole
    seconds, so several records share one; the cursor keeps the last time read with the ids read at
    it, and the next read asks from that same time and skips only those ids, so a record stamped in
    the same second (a draft confirmed just after we read) is never skipped. Once the time moves on,
    the listing is asked again from page 1 with the new time, so records that move to the end while
    we read cannot shift a page under us; later pages are read only through a run of records that
    all share the time already read. Re-reading from an older cursor returns the same records again.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    since, seen = decode_cursor(cursor)
    found: list = []
    more = False
    page = 1
    while True:
        rows, more_pages = fetch_page(since, page)
        advanced = False
        for row in rows:
            at, ident = stamp(row), key(row)
            if at == since and ident in seen:
                continue
            if len(found) >= limit:
                more = True
                break
            found.append(row)
            if at != since:
                since, seen, advanced = at, set(), True
            seen.add(ident)
        if more or not more_pages:
            break
        page = 1 if advanced else page + 1
    return found, encode_cursor(since, seen), more
