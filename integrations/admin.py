"""Django admin for connections: secrets are write-only (typed in, never shown again)."""
from django import forms
from django.contrib import admin

from .models import Connection

SECRET_NAMES = ("access_token", "webhook_secret", "client_id", "client_secret", "subscription_token", "api_key",
                "account_id")


def _secret_field(name: str) -> forms.CharField:
    return forms.CharField(label=name.replace("_", " "), required=False, strip=True,
                           widget=forms.PasswordInput(render_value=False))


class ConnectionForm(forms.ModelForm):
    """Each secret is a password field that is never filled in: blank keeps the stored value."""

    base_url = forms.URLField(required=False, assume_scheme="https",
                              help_text="API base URL (blank: the environment's)")
    secret_access_token = _secret_field("access_token")
    secret_webhook_secret = _secret_field("webhook_secret")
    secret_client_id = _secret_field("client_id")
    secret_client_secret = _secret_field("client_secret")
    secret_subscription_token = _secret_field("subscription_token")
    secret_api_key = _secret_field("api_key")
    secret_account_id = _secret_field("account_id")

    class Meta:
        model = Connection
        fields = ["code", "kind", "name", "active", "base_url", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = (self.instance.credentials or {}) if self.instance.pk else {}
        for name in SECRET_NAMES:
            self.fields[f"secret_{name}"].help_text = (
                "set (type a new value to replace it)" if stored.get(name) else "not set (the environment's value is used)")

    def save(self, commit=True):
        connection = super().save(commit=False)
        values = dict(connection.credentials or {})
        for name in SECRET_NAMES:
            typed = self.cleaned_data.get(f"secret_{name}")
            if typed:
                values[name] = typed
        connection.credentials = values
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ("code", "kind", "name", "active", "base_url")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")

    def get_fields(self, request, obj=None):
        return ["code", "kind", "name", "active", "base_url", "settings", *(f"secret_{n}" for n in SECRET_NAMES)]
