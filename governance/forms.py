"""Forms of the governance pages. They only parse; the services validate and decide."""

from __future__ import annotations

from django import forms

from attribution.choices import Provider
from attribution.models import CloudAccount, ServedModel
from attribution.widgets import (
    PlainCheckboxInput,
    PlainDateInput,
    PlainNumberInput,
    PlainSelect,
    PlainTextInput,
)
from governance.budget_services import BudgetData, ThresholdData
from governance.choices import BudgetAction, BudgetPeriod, ThresholdBasis


class BudgetForm(forms.Form):
    # Plain* widgets: the same HTML as Django's, without rendering a template per field and option.
    name = forms.CharField(max_length=200, widget=PlainTextInput)
    team = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Organisation (all teams)", widget=PlainSelect
    )
    model = forms.ModelChoiceField(
        queryset=ServedModel.objects.order_by("name"), required=False, widget=PlainSelect
    )
    provider = forms.ChoiceField(
        choices=[("", "Any provider"), *Provider.choices], required=False, widget=PlainSelect
    )
    account = forms.ModelChoiceField(
        queryset=CloudAccount.objects.order_by("name"), required=False, widget=PlainSelect
    )
    period = forms.ChoiceField(choices=BudgetPeriod.choices, initial=BudgetPeriod.MONTH, widget=PlainSelect)
    timezone = forms.CharField(
        max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Berlin", widget=PlainTextInput
    )
    fiscal_year_start_month = forms.IntegerField(
        initial=1, help_text="1-12; quarters and years start here", widget=PlainNumberInput
    )
    custom_start = forms.DateField(required=False, widget=PlainDateInput(attrs={"type": "date"}))
    custom_end = forms.DateField(required=False, widget=PlainDateInput(attrs={"type": "date"}))
    amount = forms.DecimalField(max_digits=24, decimal_places=2, widget=PlainNumberInput)
    currency = forms.CharField(max_length=3, initial="USD", widget=PlainTextInput)
    action = forms.ChoiceField(
        choices=BudgetAction.choices, initial=BudgetAction.NOTIFY, label="Default action", widget=PlainSelect
    )
    is_active = forms.BooleanField(required=False, initial=True, widget=PlainCheckboxInput)

    def __init__(self, *args, teams, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class ThresholdForm(forms.Form):
    percent = forms.DecimalField(max_digits=8, decimal_places=2, required=False, widget=PlainNumberInput)
    amount = forms.DecimalField(max_digits=24, decimal_places=2, required=False, widget=PlainNumberInput)
    basis = forms.ChoiceField(
        choices=ThresholdBasis.choices, initial=ThresholdBasis.ACTUAL, widget=PlainSelect
    )
    action = forms.ChoiceField(
        choices=[("", "Budget's action"), *BudgetAction.choices], required=False, widget=PlainSelect
    )
    throttle_share = forms.DecimalField(
        max_digits=6, decimal_places=4, required=False, widget=PlainNumberInput
    )

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return data.get("percent") is None and data.get("amount") is None


ThresholdFormSet = forms.formset_factory(ThresholdForm, extra=4, max_num=10)


def budget_data_from(form: BudgetForm, thresholds) -> BudgetData:
    values = form.cleaned_data
    return BudgetData(
        name=values["name"],
        amount=values["amount"],
        currency=values["currency"],
        team_id=values["team"].pk if values.get("team") else None,
        model_id=values["model"].pk if values.get("model") else None,
        provider=values.get("provider") or "",
        account_id=values["account"].pk if values.get("account") else None,
        period=values["period"],
        timezone=values["timezone"],
        fiscal_year_start_month=values["fiscal_year_start_month"],
        custom_start=values.get("custom_start"),
        custom_end=values.get("custom_end"),
        action=values["action"],
        is_active=values.get("is_active", False),
        thresholds=[
            ThresholdData(
                percent=item.cleaned_data.get("percent"),
                amount=item.cleaned_data.get("amount"),
                basis=item.cleaned_data.get("basis") or ThresholdBasis.ACTUAL,
                action=item.cleaned_data.get("action") or "",
                throttle_share=item.cleaned_data.get("throttle_share"),
            )
            for item in thresholds
            if not item.is_blank()
        ],
    )
