"""Forms of the exception actions (single and bulk)."""
from django import forms
from django.contrib.auth import get_user_model

from config.bad_input import db_int
from config.roles import ADMIN

NOTE_WIDGET = forms.TextInput(attrs={"size": 40})


class NoteForm(forms.Form):
    note = forms.CharField(max_length=2000, widget=NOTE_WIDGET)


def team_members(team: str):
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[team, ADMIN])
        .distinct()
        .order_by("username")
    )


class AssignForm(forms.Form):
    """An empty assignee unassigns; 'me' is the signed-in user."""

    assignee = forms.CharField(required=False)

    def __init__(self, *args, team: str, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.user = user

    def clean_assignee(self):
        value = self.cleaned_data["assignee"].strip()
        if not value:
            return None
        if value == "me":
            return self.user
        member = team_members(self.team).filter(username=value).first()
        if member is None:
            raise forms.ValidationError("Assign to a member of the owning team.")
        return member


class BulkForm(forms.Form):
    ACTIONS = [("assign", "Assign"), ("retry", "Retry"), ("resolve", "Resolve"), ("ignore", "Ignore")]

    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(  # choices are not enumerated: any id a database column holds
        coerce=int, required=False, error_messages={"invalid_choice": "%(value)s is not an exception id."}
    )
    fingerprint = forms.CharField(required=False, max_length=300)
    note = forms.CharField(required=False, max_length=2000)
    assignee = forms.CharField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].valid_value = lambda value: db_int(value) is not None

    def clean(self):
        data = super().clean()
        if not data.get("ids") and not data.get("fingerprint"):
            raise forms.ValidationError("Select some exceptions first.")
        if data.get("action") in ("resolve", "ignore") and not data.get("note", "").strip():
            raise forms.ValidationError("Say why: a resolution note or an ignore reason is required.")
        return data
