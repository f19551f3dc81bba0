"""Vectorized statistics kernels behind the checks (loaded on first use).

Each topic lives in its own module: `metrics`, `compare` (two runs' predictions), `sliced`
(per-slice aggregation), `inference` (McNemar, paired differences, TOST), `auc` (DeLong),
`intervals` (Wilson, bootstraps), `paired` (a metric with its interval, and two models
compared on the same examples), `multiple` (Holm, Benjamini-Hochberg), `trend` (Kendall's
tau on block means for loss curves) and `sequential` (anytime-valid tests for canaries).
The names below are re-exported here for convenience.

>>> from mlchecks import stats
>>> stats.holm([0.01, 0.04, 0.03]).round(2).tolist()
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

from mlchecks._lazy import LazyNames

_LAZY: dict[str, str] = {
    # metrics
    "METRICS": "metrics",
    "Metric": "metrics",
    "custom_metric": "metrics",
    "get_metric": "metrics",
    # compare
    "PredictionComparison": "compare",
    "compare_predictions": "compare",
    "loss_divergence": "compare",
    # sliced
    "SliceCodes": "sliced",
    "encode_slices": "sliced",
    "encode_slicings": "sliced",
    "sliced_accuracy": "sliced",
    "sliced_confusion": "sliced",
    "sliced_sum": "sliced",
    # intervals
    "BootstrapResult": "intervals",
    "ConfidenceInterval": "intervals",
    "bootstrap_counts": "intervals",
    "bootstrap_rows": "intervals",
    "wilson_interval": "intervals",
    # inference
    "EquivalenceResult": "inference",
    "McNemarResult": "inference",
    "PairedDifference": "inference",
    "mcnemar_exact": "inference",
    "paired_accuracy_difference": "inference",
    "tost_paired_accuracy": "inference",
    # paired (one model's metric with its interval; two models on the same examples)
    "MetricEstimate": "paired",
    "PairedResult": "paired",
    "metric_estimate": "paired",
    "paired_correctness": "paired",
    "paired_difference": "paired",
    # auc
    "DeLongResult": "auc",
    "delong": "auc",
    "delong_ci": "auc",
    "roc_auc_midrank": "auc",
    # sequential (anytime-valid) tests
    "betting_confidence_sequence": "sequential",
    "js_divergence": "sequential",
    "psi": "sequential",
    # loss trend
    "LossTrend": "trend",
    "loss_trend": "trend",
    "min_blocks": "trend",
    # multiple testing
    "adjust": "multiple",
    "benjamini_hochberg": "multiple",
    "holm": "multiple",
}

__all__ = [
    "BootstrapResult",
    "ConfidenceInterval",
    "DeLongResult",
    "EquivalenceResult",
    "LossTrend",
    "METRICS",
    "McNemarResult",
    "Metric",
    "MetricEstimate",
    "PairedDifference",
    "PairedResult",
    "PredictionComparison",
    "SliceCodes",
    "adjust",
    "benjamini_hochberg",
    "betting_confidence_sequence",
    "bootstrap_counts",
    "bootstrap_rows",
    "compare_predictions",
    "custom_metric",
    "delong",
    "delong_ci",
    "encode_slices",
    "encode_slicings",
    "get_metric",
    "holm",
    "js_divergence",
    "loss_divergence",
    "loss_trend",
    "mcnemar_exact",
    "metric_estimate",
    "min_blocks",
    "paired_accuracy_difference",
    "paired_correctness",
    "paired_difference",
    "psi",
    "roc_auc_midrank",
    "sliced_accuracy",
    "sliced_confusion",
    "sliced_sum",
    "tost_paired_accuracy",
    "wilson_interval",
]

__getattr__, __dir__ = LazyNames(__name__, _LAZY).hooks(__all__)
