"""Typed access to lake_contract.json: the one place naming each layer's paths and columns."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

CONTRACT: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("lake_contract.json").read_text(encoding="utf-8")
)
LAYERS: dict[str, str] = CONTRACT["layers"]
BRONZE_COLUMNS: list[str] = [c["name"] for c in CONTRACT["bronze"]["columns"]]
METRIC_COLUMNS: list[str] = [c["name"] for c in CONTRACT["metrics"]["columns"]]
METRIC_TYPES: list[str] = CONTRACT["metrics"]["metricTypes"]


def layer_uri(lake_root: str, layer: str) -> str:
    """URI of a layer (bronze, silver, …) under a lake root given as file:///… or s3://…."""
    return f"{lake_root.rstrip('/')}/{LAYERS[layer]}"
