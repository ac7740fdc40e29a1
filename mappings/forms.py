"""Mapping row forms: the one place a row is validated, for inline edits, the add page and CSV rows.

Messages name the problem in the admin's words ("depot CHD is not an ERP depot"). ERP facts are
checked through services.ErpChecker; an ERP outage becomes a form error, never a 500.
"""
from __future__ import annotations

import re
from decimal import Decimal

from django import forms

from integrations.models import Connection

from .models import STOCK_STATES, CarrierMapping, DepotMapping, LocationMapping, SkuMapping, TaxCodeMapping
from .services import ErpChecker, ErpUnavailable

_COMPONENT = re.compile(r"^\s*(?P<code>[^\s:]+)\s*(?:(?:x|\*|:)\s*(?P<qty>[0-9]+))?\s*$", re.IGNORECASE)
# What a component row holds: an ERP item code of 100 characters, a quantity PostgreSQL's integer holds.
_COMPONENT_CODE_MAX = 100
_COMPONENT_QTY_MAX = 2**31 - 1


def components_to_text(components) -> str:
    return "; ".join(f"{code} x{qty}" for code, qty in components)


def parse_components(text: str) -> list[tuple[str, int]]:
    """ "BOX-1 x2; LID-1" -> [("BOX-1", 2), ("LID-1", 1)] (commas or semicolons between parts)."""
    parts = [p for p in re.split(r"[;,\n]", text or "") if p.strip()]
    result: dict[str, int] = {}
    for part in parts:
        match = _COMPONENT.match(part)
        if not match:
            raise forms.ValidationError(f'"{part.strip()}" is not a component: write ITEM-CODE x2')
        if len(match["code"]) > _COMPONENT_CODE_MAX:
            raise forms.ValidationError(f"a component's ERP item code has at most {_COMPONENT_CODE_MAX} characters")
        qty_text = match["qty"] or "1"
        if len(qty_text) > 10 or int(qty_text) > _COMPONENT_QTY_MAX:
            raise forms.ValidationError(f"component {match['code']} needs a quantity of at most {_COMPONENT_QTY_MAX}")
        qty = int(qty_text)
        if qty < 1:
            raise forms.ValidationError(f"component {match['code']} needs a quantity of at least 1")
        if match["code"] in result:
            raise forms.ValidationError(f"component {match['code']} is listed twice")
        result[match["code"]] = qty
    return list(result.items())


class ConnectionField(forms.ModelChoiceField):
    """Storefront connections by code, so forms and CSV files speak the same language."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Storefront")
        super().__init__(queryset=Connection.objects.storefronts(), to_field_name="code", **kwargs)

    def label_from_instance(self, obj):
        return obj.code


class MappingForm(forms.ModelForm):
    connection = ConnectionField()

    #: fields whose change sends a question to the ERP
    erp_checked_fields: tuple[str, ...] = ()

    def __init__(self, *args, erp: ErpChecker | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.erp = erp or ErpChecker()
        self._duplicate_reported = False
        if self.instance.pk:
            # the object, not its pk, so the code (to_field_name) is what is shown and compared
            self.initial["connection"] = self.instance.connection

    def needs_erp_check(self) -> bool:
        return self.instance.pk is None or any(f in self.changed_data for f in self.erp_checked_fields)

    def duplicate_of(self):
        """The other row with the same key, if any (subclasses say what the key is)."""
        return None

    def duplicate_message(self, other) -> str:  # pragma: no cover - overridden
        return "this row already exists"

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        other = self.duplicate_of()
        if other is not None:
            self._duplicate_reported = True
            self.add_error(self.duplicate_field, self.duplicate_message(other))
            return data
        if self.needs_erp_check():
            try:
                self.check_erp(data)
            except ErpUnavailable as exc:
                self.add_error(None, str(exc))
        return data

    def check_erp(self, data) -> None:
        pass

    def validate_unique(self):
        if not self._duplicate_reported:  # our own message already names the other row
            super().validate_unique()

    def _key_rows(self, model, **key):
        qs = model.objects.filter(**key)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        return qs.first()


class SkuMappingForm(MappingForm):
    components = forms.CharField(
        required=False,
        label="Kit components",
        help_text="For a kit or bundle: ERP item codes with quantities, e.g. BOX-1 x2; LID-1",
    )
    erp_checked_fields = ("erp_item_code", "components", "active")
    duplicate_field = "storefront_sku"

    class Meta:
        model = SkuMapping
        fields = ["connection", "storefront_sku", "erp_item_code", "components", "active", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["components"] = components_to_text(
                self.instance.components.order_by("erp_item_code").values_list("erp_item_code", "quantity")
            )
        self.parsed_components: list[tuple[str, int]] | None = None

    def clean_storefront_sku(self):
        return self.cleaned_data["storefront_sku"].strip()

    def clean_erp_item_code(self):
        return self.cleaned_data["erp_item_code"].strip()

    def clean_components(self):
        self.parsed_components = parse_components(self.cleaned_data["components"])
        return components_to_text(self.parsed_components)

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("erp_item_code") and not self.parsed_components:
            self.add_error("erp_item_code", "give the ERP item code, or the kit components for a kit")
        return data

    def duplicate_of(self):
        return self._key_rows(
            SkuMapping, connection=self.cleaned_data["connection"], storefront_sku=self.cleaned_data["storefront_sku"]
        )

    def duplicate_message(self, other) -> str:
        target = other.erp_item_code or f"a kit ({other.components.count()} components)"
        return f"SKU {other.storefront_sku} is already mapped to {target}"

    def check_erp(self, data) -> None:
        code = data.get("erp_item_code")
        if code and not self.erp.item_exists(code):
            self.add_error("erp_item_code", f"ERP item {code} does not exist in the ERP")
        for comp, _qty in self.parsed_components or ():
            if not self.erp.item_exists(comp):
                self.add_error("components", f"component {comp} is not an ERP item")


class LocationMappingForm(MappingForm):
    sellable_states = forms.MultipleChoiceField(
        label="Sellable stock states", choices=STOCK_STATES, widget=forms.CheckboxSelectMultiple,
        help_text="Which ERP stock states count as sellable here",
    )
    erp_checked_fields = ("erp_warehouse", "active")
    duplicate_field = "storefront_location"

    class Meta:
        model = LocationMapping
        fields = ["connection", "storefront_location", "erp_warehouse", "sellable_states", "buffer_units", "buffer_percent", "active"]

    def clean_storefront_location(self):
        return self.cleaned_data["storefront_location"].strip()

    def clean_erp_warehouse(self):
        return self.cleaned_data["erp_warehouse"].strip().upper()

    def clean(self):
        data = super().clean()
        if not self.errors and data.get("buffer_units") and data.get("buffer_percent"):
            self.add_error("buffer_percent", "give a safety buffer in units or in percent, not both")
        return data

    def duplicate_of(self):
        return self._key_rows(
            LocationMapping,
            connection=self.cleaned_data["connection"],
            storefront_location=self.cleaned_data["storefront_location"],
        )

    def duplicate_message(self, other) -> str:
        return f"location {other.storefront_location} is already mapped to warehouse {other.erp_warehouse}"

    def check_erp(self, data) -> None:
        code = data["erp_warehouse"]
        if code not in self.erp.depot_codes():
            self.add_error("erp_warehouse", f"warehouse {code} is not an ERP warehouse or depot")


class DepotMappingForm(MappingForm):
    erp_checked_fields = ("depot_code", "active")
    duplicate_field = "country"

    class Meta:
        model = DepotMapping
        fields = ["connection", "country", "storefront_location", "depot_code", "active"]

    def clean_country(self):
        country = self.cleaned_data["country"].strip().upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            raise forms.ValidationError(f"{country} is not a two-letter ISO country code")
        return country

    def clean_storefront_location(self):
        return self.cleaned_data["storefront_location"].strip()

    def clean_depot_code(self):
        return self.cleaned_data["depot_code"].strip().upper()

    def duplicate_of(self):
        d = self.cleaned_data
        return self._key_rows(
            DepotMapping, connection=d["connection"], country=d["country"], storefront_location=d["storefront_location"]
        )

    def duplicate_message(self, other) -> str:
        where = other.country or "every country"
        if other.storefront_location:
            where += f" at location {other.storefront_location}"
        return f"{where} is already fulfilled by depot {other.depot_code}"

    def check_erp(self, data) -> None:
        code = data["depot_code"]
        if code not in self.erp.depot_codes():
            self.add_error("depot_code", f"depot {code} is not an ERP depot")


class TaxCodeMappingForm(MappingForm):
    duplicate_field = "rate"

    class Meta:
        model = TaxCodeMapping
        fields = ["connection", "tax_category", "rate", "country", "erp_tax_code"]

    def clean_country(self):
        country = self.cleaned_data["country"].strip().upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            raise forms.ValidationError(f"{country} is not a two-letter ISO country code")
        return country

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate is not None and not (Decimal(0) <= rate <= Decimal(1)):
            raise forms.ValidationError(f"rate {rate} is not a fraction between 0 and 1 (write 0.2 for 20%)")
        return rate

    def clean_tax_category(self):
        return self.cleaned_data["tax_category"].strip()

    def clean_erp_tax_code(self):
        return self.cleaned_data["erp_tax_code"].strip()

    def duplicate_of(self):
        d = self.cleaned_data
        return self._key_rows(
            TaxCodeMapping, connection=d["connection"], tax_category=d["tax_category"], rate=d["rate"], country=d["country"]
        )

    def duplicate_message(self, other) -> str:
        what = f"rate {other.rate.normalize()}"
        if other.tax_category:
            what += f" ({other.tax_category})"
        return f"{what} in {other.country or 'every country'} is already mapped to ERP tax code {other.erp_tax_code}"


class CarrierMappingForm(MappingForm):
    """No ERP check: carriers are the ERP's free text on its dispatches, not a list it can be asked for."""

    duplicate_field = "erp_carrier"

    class Meta:
        model = CarrierMapping
        fields = ["connection", "erp_carrier", "tracking_company", "active"]

    def clean_erp_carrier(self):
        return self.cleaned_data["erp_carrier"].strip()

    def clean_tracking_company(self):
        return self.cleaned_data["tracking_company"].strip()

    def duplicate_of(self):
        d = self.cleaned_data
        # ERP carrier names are matched without regard to case, so two rows may not differ only by it.
        qs = CarrierMapping.objects.filter(connection=d["connection"], erp_carrier__iexact=d["erp_carrier"])
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        return qs.first()

    def duplicate_message(self, other) -> str:
        return f"carrier {other.erp_carrier} is already mapped to {other.tracking_company}"


class ProposalCommentForm(forms.Form):
    """What the person proposing a mapping tells the admin (optional)."""

    comment = forms.CharField(
        label="Why (for the admin)", required=False, max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: how you know this is the right ERP code.",
    )


class ProposalRejectForm(forms.Form):
    reason = forms.CharField(
        label="Reason", max_length=1000, strip=True,
        error_messages={"required": "Say why the proposal is rejected: the person who proposed it reads this."},
    )


class ProposalSourceForm(forms.Form):
    """The exception a proposal starts from, as given in the query string (?exception=42)."""

    exception = forms.IntegerField(min_value=1, max_value=2**63 - 1)
