"""The model repository extension of the Open Inference Protocol, for `V2Endpoint`.

``POST /v2/repository/index`` lists a server's models and versions;
``POST /v2/repository/models/{model}/load`` and ``.../unload`` (re)load and unload a model,
with every version of it. `V2Repository` holds these calls; `V2Endpoint` supplies the
transport, the model's name and readiness.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from mlchecks._deadline import Deadline
from mlchecks._validate import check_non_empty_string
from mlchecks.exceptions import InvalidInput
from mlchecks.serving._v2_codec import V2Error, http_error, version_sort_key

__all__ = ["V2Repository"]


class V2Repository:
    """The repository calls of a `V2Endpoint` (a mixin: it uses the endpoint's transport)."""

    model: str
    url: str
    load_timeout_s: float
    _quoted_model: str

    def _call(
        self, method: str, path: str, payload: Any = None, *, timeout_s: float | None = None
    ) -> tuple[int, bytes]:
        raise NotImplementedError

    def _parse(self, data: bytes, what: str, expected: type[Any]) -> Any:
        raise NotImplementedError

    def ready(self, version: str | None = None) -> bool:
        raise NotImplementedError

    def _bounded(self, seconds: float, name: str) -> AbstractContextManager[Deadline]:
        raise NotImplementedError

    def _index(self) -> list[dict[str, Any]]:
        status, data = self._call("POST", "/v2/repository/index", {})
        if status != 200:
            raise http_error(f"repository index of {self.url}", status, data)
        items: list[Any] = self._parse(data, "repository index", list)
        return [item for item in items if isinstance(item, dict)]

    def repository_versions(self) -> tuple[str, ...]:
        """Every version of the model in the server's repository, loaded or not.

        Raises:
            V2Error: the server has no repository extension or could not be reached.
        """
        found = {
            str(item["version"])
            for item in self._index()
            if item.get("name") == self.model and item.get("version") not in (None, "")
        }
        return tuple(sorted(found, key=version_sort_key))

    def versions(self) -> tuple[str, ...]:
        """The versions of the model that are loaded and ready, in version order.

        Lists the repository index (``POST /v2/repository/index``) and asks each version's
        readiness (``GET .../versions/{v}/ready``); an unversioned model has no versions.

        Raises:
            V2Error: the server has no repository extension or could not be reached.
        """
        return tuple(v for v in self.repository_versions() if self.ready(v))

    def load(self, version: str) -> None:
        """Load the model from the server's repository and check that ``version`` is ready.

        The V2 repository API loads models, not versions:
        ``POST /v2/repository/models/{model}/load`` makes the server (re)read the model from
        its repository. MLServer then loads every version found there (reloading the ones
        already loaded, each new copy ready before the old one goes, so serving goes on)
        and unloads the versions no longer there. Triton loads the versions the model's
        ``version_policy`` selects (``all { }`` to serve several side by side), reloading every
        version when a file of the model changed and doing nothing otherwise, and answers
        once they are loaded. The load and the readiness checks after it end within
        ``load_timeout_s``. To add a version, put it into the
        repository (a folder with its ``model-settings.json`` for MLServer, its ``model.py`` or
        model file for Triton) and call this.

        Raises:
            InvalidInput: ``version`` is not a non-empty string, or it is not ready after
                the load (it is not in the server's repository).
            V2Error: the server refused the load or could not be reached.
        """
        version = check_non_empty_string(version, "version")
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._load_request(f"loading model {self.model!r} (for version {version!r})")
            if self.ready(version):
                return
            ready = self.versions()
            listing = ", ".join(repr(v) for v in ready) if ready else "none"
        raise InvalidInput(
            f"version {version!r} of model {self.model!r} is not ready after loading the "
            f"model at {self.url} (ready versions: {listing}); is it in the server's "
            "model repository (and, on Triton, selected by the model's version_policy)?"
        )

    def _load_request(self, what: str) -> None:
        path = f"/v2/repository/models/{self._quoted_model}/load"
        status, data = self._call("POST", path, timeout_s=self.load_timeout_s)
        if not 200 <= status < 300:
            raise http_error(f"{what} at {self.url} failed", status, data)

    def load_model(self) -> None:
        """Load the model (``POST /v2/repository/models/{model}/load``) and check it is ready.

        For servers that serve each version as its own model name (`V2ModelsDeployment`).

        Raises:
            InvalidInput: the model is not ready after the load.
            V2Error: the server refused the load or could not be reached.
        """
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._load_request(f"loading model {self.model!r}")
            ready = self.ready()
        if not ready:
            raise InvalidInput(
                f"model {self.model!r} is not ready after loading it at {self.url}; is it in "
                "the server's model repository?"
            )

    def unload(self, version: str) -> None:
        """Unload ``version``, which must be the only loaded version of the model.

        The V2 repository API unloads models, not versions
        (``POST /v2/repository/models/{model}/unload`` unloads every version), so this
        refuses while other versions are loaded rather than unloading them too. To drop
        one version of several from MLServer, remove it from the repository and call
        `load` (MLServer unloads versions no longer there); to unload all, `unload_all`.

        Raises:
            InvalidInput: ``version`` is not loaded.
            V2Error: other versions are loaded (``kind="unsupported"``), the server refused
                the unload, or it could not be reached.
        """
        version = check_non_empty_string(version, "version")
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            self._unload_only(version)

    def _unload_only(self, version: str) -> None:
        loaded = self.versions()
        if version not in loaded:
            listing = ", ".join(repr(v) for v in loaded) if loaded else "none"
            raise InvalidInput(
                f"cannot unload version {version!r} of model {self.model!r}: it is not loaded "
                f"(loaded: {listing})"
            )
        others = [v for v in loaded if v != version]
        if others:
            listing = ", ".join(repr(v) for v in others)
            raise V2Error(
                f"cannot unload only version {version!r} of model {self.model!r}: the V2 "
                f"repository API unloads every version, and {listing} would go too; remove "
                "it from the server's repository and call load(), or call unload_all()",
                kind="unsupported",
            )
        self.unload_all()

    def unload_all(self) -> None:
        """Unload every version of the model (``POST /v2/repository/models/{model}/unload``).

        Raises:
            V2Error: the server refused the unload or could not be reached.
        """
        path = f"/v2/repository/models/{self._quoted_model}/unload"
        with self._bounded(self.load_timeout_s, "load_timeout_s"):
            status, data = self._call("POST", path, timeout_s=self.load_timeout_s)
        if not 200 <= status < 300:
            raise http_error(f"unloading model {self.model!r} at {self.url} failed", status, data)
