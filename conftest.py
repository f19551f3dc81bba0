"""Doctests of optional integrations are collected only where their framework is installed.

CI installs every optional framework (and fails on skipped tests), so there they all run.
"""

from __future__ import annotations

import importlib.util

collect_ignore = [
    path
    for module, path in (
        ("torch", "mlchecks/integrations/torch.py"),
        ("torch", "mlchecks/integrations/_torch_steps.py"),
        ("lightning", "mlchecks/integrations/lightning.py"),
        ("keras", "mlchecks/integrations/keras.py"),
        ("xgboost", "mlchecks/integrations/xgboost.py"),
        ("lightgbm", "mlchecks/integrations/lightgbm.py"),
        ("grpc", "mlchecks/serving/grpc.py"),
        ("mlflow", "mlchecks/serving/mlflow.py"),
    )
    if importlib.util.find_spec(module) is None
]
