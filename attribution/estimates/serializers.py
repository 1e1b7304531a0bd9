"""Serializers of the accuracy report and the calibration history (served by /api/v1/estimates/...)."""

from __future__ import annotations

from rest_framework import serializers

MONEY = {"max_digits": 34, "decimal_places": 10, "read_only": True}
PERCENT = {"read_only": True, "allow_null": True}


class AccuracyFiguresSerializer(serializers.Serializer):
    key = serializers.CharField(read_only=True, help_text="Provider, basis, day, or `all`")
    deployment_days = serializers.IntegerField(read_only=True, help_text="Reconciled deployment-days")
    estimated = serializers.DecimalField(**MONEY, help_text="Calibrated estimates (what was shown)")
    uncalibrated = serializers.DecimalField(**MONEY, help_text="What the basis alone gave")
    billed = serializers.DecimalField(**MONEY)
    median_error_percent = serializers.FloatField(
        **PERCENT, help_text="Median |estimated - billed| / billed per deployment-day"
    )
    p90_error_percent = serializers.FloatField(**PERCENT, help_text="90th percentile of the same")
    uncalibrated_median_error_percent = serializers.FloatField(**PERCENT)
    uncalibrated_p90_error_percent = serializers.FloatField(**PERCENT)
    bias_percent = serializers.FloatField(**PERCENT, help_text="(estimated - billed) / billed; + is over")
    uncalibrated_bias_percent = serializers.FloatField(**PERCENT)


class CoverageSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    billed = serializers.DecimalField(**MONEY, help_text="Billed cost of the reconciled deployment-days")
    unestimated = serializers.DecimalField(**MONEY, help_text="Of which no estimate was made for")
    unestimated_share_percent = serializers.FloatField(**PERCENT)


class DeploymentDaySerializer(serializers.Serializer):
    day = serializers.DateField(read_only=True)
    deployment = serializers.CharField(read_only=True, source="deployment_slug")
    provider = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    basis = serializers.CharField(read_only=True)
    estimated = serializers.DecimalField(**MONEY)
    uncalibrated = serializers.DecimalField(**MONEY)
    billed = serializers.DecimalField(**MONEY)
    calibration_factor = serializers.DecimalField(max_digits=12, decimal_places=6, **PERCENT)
    error_percent = serializers.SerializerMethodField()
    uncalibrated_error_percent = serializers.SerializerMethodField()

    def get_error_percent(self, row) -> float | None:
        value = row.error_percent(calibrated=True)
        return None if value is None else round(value, 2)

    def get_uncalibrated_error_percent(self, row) -> float | None:
        value = row.error_percent(calibrated=False)
        return None if value is None else round(value, 2)


class AccuracyReportSerializer(serializers.Serializer):
    overall = AccuracyFiguresSerializer(read_only=True)
    by_provider = AccuracyFiguresSerializer(many=True, read_only=True)
    by_basis = AccuracyFiguresSerializer(many=True, read_only=True)
    by_day = AccuracyFiguresSerializer(many=True, read_only=True, help_text="The trend, one row per day")
    coverage = CoverageSerializer(many=True, read_only=True, help_text="Per currency")
    deployment_days = DeploymentDaySerializer(
        many=True, read_only=True, help_text="Only with ?deployment=<slug> (one deployment's days)"
    )


class CalibrationSerializer(serializers.Serializer):
    deployment = serializers.CharField(read_only=True, source="deployment_slug")
    provider = serializers.CharField(read_only=True)
    basis = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    factor = serializers.DecimalField(max_digits=12, decimal_places=6, read_only=True)
    in_force = serializers.BooleanField(read_only=True, help_text="The factor applied to new estimates")
    learned_at = serializers.DateTimeField(read_only=True)
    window_first = serializers.DateField(read_only=True)
    window_last = serializers.DateField(read_only=True)
    days_used = serializers.IntegerField(read_only=True)
    estimated = serializers.DecimalField(**MONEY, allow_null=True, help_text="Admin and finance only")
    billed = serializers.DecimalField(**MONEY, allow_null=True, help_text="Admin and finance only")
