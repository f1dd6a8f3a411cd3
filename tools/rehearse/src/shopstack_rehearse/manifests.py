"""The rendered objects: a YAML stream parsed into Kubernetes objects, label selectors, and
the small value formats the kubelet reads (quantities, durations, int-or-string ports)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Json = dict[str, Any]

HOOK_ANNOTATION = "helm.sh/hook"
HOOK_WEIGHT_ANNOTATION = "helm.sh/hook-weight"
HOOK_DELETE_ANNOTATION = "helm.sh/hook-delete-policy"


class ManifestError(ValueError):
    """A rendered object the rehearsal cannot accept; the message names the object."""


@dataclass
class KubeObject:
    """One rendered object. ``body`` is the parsed document as helm printed it."""

    body: Json
    namespace: str

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def metadata(self) -> Json:
        meta: Json = self.body.get("metadata") or {}
        return meta

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.metadata.get("labels") or {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.metadata.get("annotations") or {}).items()}

    @property
    def spec(self) -> Json:
        spec: Json = self.body.get("spec") or {}
        return spec

    @property
    def ref(self) -> str:
        """How every message names the object: ``Kind/namespace/name``."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def hooks(self) -> list[str]:
        raw = self.annotations.get(HOOK_ANNOTATION, "")
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def hook_weight(self) -> int:
        raw = self.annotations.get(HOOK_WEIGHT_ANNOTATION, "0")
        try:
            return int(raw)
        except ValueError as error:
            raise ManifestError(f"{self.ref}: hook weight {raw!r} is not an integer") from error

    @property
    def hook_delete_policies(self) -> list[str]:
        raw = self.annotations.get(HOOK_DELETE_ANNOTATION, "")
        # Helm's default when none is given.
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        return parts or ["before-hook-creation"]


@dataclass
class Manifests:
    """Every object of a render, in the order helm printed them."""

    objects: list[KubeObject] = field(default_factory=list)

    def of_kind(self, *kinds: str, hooks: bool = False) -> list[KubeObject]:
        return [o for o in self.objects if o.kind in kinds and bool(o.hooks) == hooks]

    def find(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        for obj in self.objects:
            if (obj.kind, obj.namespace, obj.name) == (kind, namespace, name):
                return obj
        return None

    def namespaces(self) -> set[str]:
        return {o.namespace for o in self.objects} | {
            o.name for o in self.objects if o.kind == "Namespace"
        }


def parse_stream(text: str, default_namespace: str) -> Manifests:
    """Parse a ``helm template`` stream (or any multi-document YAML of objects)."""
    manifests = Manifests()
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"the rendered stream is not YAML: {error}") from error
    for document in documents:
        for body in _expand(document):
            if "kind" not in body or "apiVersion" not in body:
                raise ManifestError(f"a rendered document has no kind or apiVersion: {body!r:.200}")
            meta = body.get("metadata") or {}
            if not meta.get("name"):
                raise ManifestError(f"a rendered {body['kind']} has no metadata.name")
            namespace = str(meta.get("namespace") or default_namespace)
            manifests.objects.append(KubeObject(body=body, namespace=namespace))
    return manifests


def _expand(document: object) -> Iterable[Json]:
    if document is None:
        return []
    if not isinstance(document, dict):
        raise ManifestError(f"a rendered document is not a mapping: {document!r:.200}")
    if document.get("kind") == "List" or (
        isinstance(document.get("kind"), str)
        and document["kind"].endswith("List")
        and isinstance(document.get("items"), list)
    ):
        return [item for item in document.get("items", []) if item]
    return [document]


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty selector matches all."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key = str(expression["key"])
        operator = expression["operator"]
        values = {str(v) for v in expression.get("values") or []}
        present = key in labels
        holds = {
            "In": present and labels.get(key) in values,
            "NotIn": not (present and labels.get(key) in values),
            "Exists": present,
            "DoesNotExist": not present,
        }
        if operator not in holds:
            raise ManifestError(f"label selector operator {operator!r} is not one Kubernetes has")
        if not holds[operator]:
            return False
    return True


def service_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Service's selector is a plain map; an empty or absent one selects no pod."""
    if not selector:
        return False
    return all(labels.get(str(k)) == str(v) for k, v in selector.items())


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def quantity(value: object) -> float:
    """A resource quantity (``512Mi``, ``100m``, ``1.5``) as a plain number."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ManifestError(f"{value!r} is not a Kubernetes quantity")
    number, suffix = float(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    raise ManifestError(f"{value!r}: unknown quantity suffix {suffix!r}")


def decode_secret(obj: KubeObject) -> dict[str, bytes]:
    """A Secret's data as the API server stores it: ``data`` decoded, ``stringData`` over it."""
    data: dict[str, bytes] = {}
    for key, value in (obj.body.get("data") or {}).items():
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True)
        except ValueError as error:
            raise ManifestError(f"{obj.ref}: data.{key} is not base64") from error
    for key, value in (obj.body.get("stringData") or {}).items():
        data[str(key)] = str(value).encode()
    return data


def config_map_data(obj: KubeObject) -> dict[str, bytes]:
    data = {str(k): str(v).encode() for k, v in (obj.body.get("data") or {}).items()}
    for key, value in (obj.body.get("binaryData") or {}).items():
        data[str(key)] = base64.b64decode(str(value))
    return data


def percent_or_int(value: object, total: int, *, round_up: bool) -> int:
    """maxSurge / maxUnavailable: an int, or a percentage of ``total`` (surge rounds up,
    unavailable down, as the Deployment controller does)."""
    text = str(value)
    if text.endswith("%"):
        share = float(text[:-1]) * total / 100
        whole = int(share)
        return whole + 1 if round_up and share > whole else whole
    return int(text)
