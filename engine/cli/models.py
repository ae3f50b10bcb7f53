"""``models``: the registered models, with their family, whether K applies and their default learning rate."""

from __future__ import annotations

import json
from typing import Any

from engine.cli.common import EXIT_OK, add_common, info
from engine.config.models import get_spec, list_models


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the registered models",
        description="The registered models: name, family, whether K applies, default learning rate.",
    )
    add_common(p)


def cmd_models(args) -> int:
    rows: list[dict[str, Any]] = []
    for name in list_models():
        spec = get_spec(name)
        rows.append(
            {
                "name": name,
                "label": spec.label,
                "family": spec.family,
                "uses_k": spec.uses_k,
                "trains_topology": spec.trains_topology,
                "default_lr": spec.default_lr,
                "params": spec.params_class.__name__,
            }
        )
        info(f"{name:<10} {spec.family:<8} {'K' if spec.uses_k else '-'}  lr {spec.default_lr:<7g} {spec.label}")
    if getattr(args, "json", False):
        print(json.dumps({"models": rows}), flush=True)
    else:
        print("\n".join(r["name"] for r in rows), flush=True)
    return EXIT_OK
