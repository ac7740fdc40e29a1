"""CSV export of every mapping table, and the import: a dry-run preview (add / change / reject with
reasons) and an all-or-nothing apply that re-validates inside one transaction."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction

from .forms import MappingForm
from .services import ErpChecker, mapping_save
from .tables import TableSpec

MAX_IMPORT_ROWS = 20000
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


def csv_export(spec: TableSpec) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(spec.columns), lineterminator="\n")
    writer.writeheader()
    for row in spec.queryset().order_by("connection__code", "pk").iterator(chunk_size=500):
        writer.writerow(spec.to_csv(row))
    return out.getvalue()


@dataclass
class ImportRow:
    line: int
    action: str  # add | change | unchanged | reject
    key: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (column, from, to)
    errors: list[str] = field(default_factory=list)
    form: MappingForm | None = field(default=None, repr=False)


@dataclass
class ImportPreview:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # about the file itself (header, size)

    def of(self, action: str) -> list[ImportRow]:
        return [r for r in self.rows if r.action == action]

    @property
    def added(self) -> list[ImportRow]:
        return self.of("add")

    @property
    def changed(self) -> list[ImportRow]:
        return self.of("change")

    @property
    def unchanged(self) -> list[ImportRow]:
        return self.of("unchanged")

    @property
    def rejected(self) -> list[ImportRow]:
        return self.of("reject")

    @property
    def to_apply(self) -> int:
        return len(self.added) + len(self.changed)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.rejected


class ImportRejected(Exception):
    def __init__(self, preview: ImportPreview):
        super().__init__(f"{len(preview.rejected)} rows rejected")
        self.preview = preview


def _normalise_key(spec: TableSpec, column: str, value: str) -> object:
    value = (value or "").strip()
    if column == "country":
        return value.upper()
    if column == "rate":
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _find_existing(spec: TableSpec, data: dict[str, str]):
    lookup = {}
    for column in spec.key:
        value = _normalise_key(spec, column, data.get(column, ""))
        if column == "connection":
            lookup["connection__code"] = value
        elif column == "rate" and not isinstance(value, Decimal):
            return None  # the form will say what is wrong with it
        else:
            lookup[column] = value
    return spec.model.objects.filter(**lookup).first()


def _form_data(spec: TableSpec, raw: dict[str, str], existing) -> tuple[dict, list[str]]:
    """Columns left out keep the existing value (or the default for a new row)."""
    base = spec.to_csv(existing) if existing is not None else dict(spec.defaults)
    merged = {**base, **{k: v for k, v in raw.items() if k in spec.columns}}
    data: dict[str, object] = {}
    errors = []
    for column in spec.columns:
        value = (merged.get(column) or "").strip()
        if column in spec.booleans:
            if value.lower() in _TRUE:
                data[column] = "on"  # what a checked checkbox posts
            elif value.lower() not in _FALSE:
                errors.append(f'{column}: "{value}" is not true or false')
        elif column in spec.multi:
            data[column] = [v.strip() for v in value.split(";") if v.strip()]
        else:
            data[column] = value
    return data, errors


def csv_preview(spec: TableSpec, text: str, *, erp: ErpChecker | None = None) -> ImportPreview:
    """Validate every row as the inline form would, without writing anything."""
    preview = ImportPreview()
    erp = erp or ErpChecker()
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        preview.errors.append(f"the file is not a readable CSV: {exc}")
        return preview
    if not header:
        preview.errors.append("the file is empty: the first line must name the columns")
        return preview
    reader.fieldnames = header
    unknown = [h for h in header if h not in spec.columns]
    missing = [k for k in spec.key if k not in header]
    if unknown:
        preview.errors.append(f"unknown columns: {', '.join(unknown)} (expected: {', '.join(spec.columns)})")
    if missing:
        preview.errors.append(f"missing key columns: {', '.join(missing)}")
    if preview.errors:
        return preview
    seen: dict[tuple, int] = {}
    try:
        for raw in reader:
            line = reader.line_num
            if len(preview.rows) >= MAX_IMPORT_ROWS:
                preview.errors.append(f"the file has more than {MAX_IMPORT_ROWS} rows: split it")
                break
            if None in raw:  # more cells than columns
                preview.rows.append(ImportRow(line, "reject", "", errors=["more cells than columns"]))
                continue
            raw = {k: (v or "") for k, v in raw.items()}
            if not any(v.strip() for v in raw.values()):
                continue  # blank line
            preview.rows.append(_preview_row(spec, line, raw, erp, seen))
    except csv.Error as exc:
        preview.errors.append(f"the file is not a readable CSV near line {reader.line_num}: {exc}")
    return preview


def _preview_row(spec: TableSpec, line: int, raw: dict, erp: ErpChecker, seen: dict) -> ImportRow:
    key_tuple = tuple(_normalise_key(spec, k, raw.get(k, "")) for k in spec.key)
    key = " · ".join(str(v) or "*" for v in key_tuple)
    if key_tuple in seen:
        return ImportRow(line, "reject", key, errors=[f"the same row appears twice in the file (lines {seen[key_tuple]} and {line})"])
    seen[key_tuple] = line
    existing = _find_existing(spec, raw)
    data, errors = _form_data(spec, raw, existing)
    if errors:
        return ImportRow(line, "reject", key, errors=errors)
    before = spec.to_csv(existing) if existing is not None else {}  # is_valid() writes onto the instance
    form = spec.form(data=data, instance=existing, erp=erp)
    if not form.is_valid():
        messages = []
        for name, errs in form.errors.items():
            for err in errs:
                messages.append(err if name == "__all__" else f"{name}: {err}")
        return ImportRow(line, "reject", key, errors=messages)
    if existing is None:
        return ImportRow(line, "add", key, form=form)
    changes = [(c, before.get(c, ""), _display(data.get(c))) for c in form.changed_data if c in spec.columns]
    return ImportRow(line, "change" if changes else "unchanged", key, changes=changes, form=form)


def _display(value) -> str:
    if isinstance(value, list):
        return ";".join(value)
    if value == "on":
        return "true"
    return "false" if value is None else str(value)


def csv_apply(spec: TableSpec, text: str, *, actor) -> ImportPreview:
    """All or nothing: re-validate inside one transaction; any rejected row changes nothing."""
    with transaction.atomic():
        preview = csv_preview(spec, text)
        if not preview.ok:
            raise ImportRejected(preview)
        for row in preview.added + preview.changed:
            mapping_save(form=row.form, actor=actor, reason=f"CSV import, line {row.line}")
    return preview
