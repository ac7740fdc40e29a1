"""Django admin for connections: secrets are write-only (typed in, never shown again)."""
from django import forms
from django.contrib import admin

from .models import Connection

SECRET_NAMES = ("access_token", "webhook_secret", "client_id", "client_secret", "subscription_token", "api_key",
                "account_id")


class ConnectionForm(forms.ModelForm):
    """Each secret is a password field that is never filled in: blank keeps the stored value."""

    class Meta:
        model = Connection
        fields = ["code", "kind", "name", "active", "base_url", "settings"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = (self.instance.credentials or {}) if self.instance.pk else {}
        for name in SECRET_NAMES:
            self.fields[f"secret_{name}"] = forms.CharField(
                label=name.replace("_", " "), required=False, strip=True,
                widget=forms.PasswordInput(render_value=False),
                help_text="set" if stored.get(name) else "not set (the environment's value is used)")

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
