"""Recompute the suggested mapping rules from the current line items (decisions are kept)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from attribution.mapping.suggestions import rule_suggestions_refresh
from attribution.models import RuleSuggestion, SuggestionState


class Command(BaseCommand):
    help = "Suggest mapping rules for untagged cost from tagged resources sharing its name, project, service."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-preview", action="store_true", help="Skip the dollars-moved preview (faster)."
        )

    def handle(self, *args, no_preview: bool, **options) -> None:
        summary = rule_suggestions_refresh(with_preview=not no_preview)
        self.stdout.write(
            self.style.SUCCESS(
                f"Suggestions: {summary.created} new, {summary.updated} updated, {summary.removed} no longer "
                f"supported, {summary.kept_decided} already decided."
            )
        )
        for suggestion in RuleSuggestion.objects.filter(state=SuggestionState.OPEN).select_related(
            "set_team", "set_model"
        )[:10]:
            self.stdout.write(
                f"  #{suggestion.pk} {suggestion.untagged_cost:.2f} {suggestion.currency} "
                f"(confidence {suggestion.confidence}): {suggestion.name}"
            )
