"""Vectorized statistics kernels behind the checks (loaded on first use).

Each topic lives in its own module: `metrics`, `compare` (two runs' predictions), `sliced`
(per-slice aggregation), `inference` (McNemar, paired differences, TOST), `auc` (DeLong),
`intervals` (Wilson, bootstraps), `multiple` (Holm, Benjamini-Hochberg) and `sequential`
(anytime-valid tests for canaries). The names below are re-exported here for convenience.

>>> from mlchecks import stats
>>> stats.holm([0.01, 0.04, 0.03]).round(2).tolist()
[0.03, 0.06, 0.06]
"""

from __future__ import annotations

from typing import Any

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
    # auc
    "DeLongResult": "auc",
    "delong": "auc",
    "delong_ci": "auc",
    "roc_auc_midrank": "auc",
    # sequential (anytime-valid) tests
    "CanaryMonitor": "sequential",
    "betting_confidence_sequence": "sequential",
    "js_divergence": "sequential",
    "psi": "sequential",
    # multiple testing
    "adjust": "multiple",
    "benjamini_hochberg": "multiple",
    "holm": "multiple",
}

__all__ = [
    "BootstrapResult",
    "CanaryMonitor",
    "ConfidenceInterval",
    "DeLongResult",
    "EquivalenceResult",
    "METRICS",
    "McNemarResult",
    "Metric",
    "PairedDifference",
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
    "mcnemar_exact",
    "paired_accuracy_difference",
    "psi",
    "roc_auc_midrank",
    "sliced_accuracy",
    "sliced_confusion",
    "sliced_sum",
    "tost_paired_accuracy",
    "wilson_interval",
]


_loader = LazyNames(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    return _loader.load(name)


def __dir__() -> list[str]:
    return _loader.dir(__all__)
