"""Adapters that turn training code into a `mlchecks.protocols.Trainer`.

`FunctionTrainer` wraps your own callables (any framework); `mlchecks.integrations.torch`
and `mlchecks.integrations.sklearn` adapt PyTorch modules and scikit-learn estimators
(their frameworks are imported only when an adapter is built).
`mlchecks.integrations.lightning` (`LightningTrainer`) and `mlchecks.integrations.keras`
(`KerasTrainer`, Keras 3 on its torch backend) adapt Lightning and Keras models.
"""

from __future__ import annotations

from mlchecks.integrations.callables import FunctionTrainer

__all__ = ["FunctionTrainer"]
