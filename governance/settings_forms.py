"""Forms of the governance Settings pages (API tokens, channels, members). They only parse; the
services validate and decide."""

from __future__ import annotations

from django import forms

from governance.choices import AlertKind, ChannelKind, MembershipRole, Role

# The scopes a token may carry (README: API token scopes). `read` and `write` cover everything the
# user may read / change; `write:<kind>` narrows writes to one kind of object.
TOKEN_SCOPES = [
    ("read", "read: GET on everything you may read"),
    ("write", "write: every change you may make"),
    ("write:budgets", "write:budgets"),
    ("write:quotas", "write:quotas"),
    ("write:alerts", "write:alerts"),
    ("write:channels", "write:channels"),
    ("write:dimension_rules", "write:dimension_rules"),
    ("write:exchange_rates", "write:exchange_rates"),
    ("write:accounts", "write:accounts (syncs and connection tests)"),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. finance-notebook")
    scopes = forms.MultipleChoiceField(
        choices=TOKEN_SCOPES, widget=forms.CheckboxSelectMultiple, initial=["read"],
        help_text="A token acts as you, limited further by its scopes.",
    )  # fmt: skip
    expires_on = forms.DateField(
        required=False, label="Expires on", widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Blank: never (revoke it when it is no longer needed).",
    )  # fmt: skip


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    target = forms.CharField(max_length=500, help_text="Email address, or the webhook's https URL")
    secret_reference = forms.CharField(
        max_length=200, required=False, label="Signing secret reference",
        help_text="Signed webhooks: env:NAME or file:/path — a reference, never the secret itself.",
    )  # fmt: skip
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every team (organisation-wide)")
    kinds = forms.MultipleChoiceField(
        choices=[(value, label) for value, label in AlertKind.choices if value != AlertKind.TEST],
        required=False, widget=forms.CheckboxSelectMultiple, label="Alert kinds",
        help_text="None ticked: every kind.",
    )  # fmt: skip
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, teams, allow_org_wide: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
        if not allow_org_wide:
            # A team lead's channels belong to a team they lead; the service refuses the rest anyway.
            self.fields["team"].required = True
            self.fields["team"].empty_label = None

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"], "kind": data["kind"], "target": data["target"],
            "secret_reference": data["secret_reference"].strip(),
            "team_id": data["team"].pk if data.get("team") else None,
            "kinds": list(data.get("kinds") or []), "is_active": data.get("is_active", False),
        }  # fmt: skip


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=[("", "No role (cannot sign in to any page's data)"), *Role.choices],
                             required=False)  # fmt: skip


class MembershipForm(forms.Form):
    team = forms.ModelChoiceField(queryset=None)
    role = forms.ChoiceField(choices=MembershipRole.choices, label="Role in the team")

    def __init__(self, *args, teams, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
