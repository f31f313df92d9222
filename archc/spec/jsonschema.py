"""JSON Schema of the spec format, for editors: top-level keys, blocks, and every op's args."""
from __future__ import annotations

from typing import Any

from archc import ops
from archc.spec.layers import STRUCTURES
from archc.spec.schema import SpecModel

EXPR = {"type": "string", "pattern": r"\$"}


def loosen(schema: Any) -> Any:
    """Any value may also be an expression string (`$name`, `${...}`)."""
    if isinstance(schema, dict):
        out = {k: loosen(v) for k, v in schema.items()}
        if "type" in out and out.get("type") != "object" or "anyOf" in out or "enum" in out:
            return {"anyOf": [out, EXPR]} if "properties" not in out else out
        return out
    if isinstance(schema, list):
        return [loosen(v) for v in schema]
    return schema


def wiring_props() -> dict[str, Any]:
    return {
        "name": {"type": "string", "description": "attribute name in the emitted module"},
        "id": {"type": "string", "description": "label of this layer's output, for `from`"},
        "from": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPR]},
        "first": {"type": "object", "description": "args overriding the first repeat"},
        "when": {"anyOf": [{"type": "boolean"}, EXPR], "description": "keep the layer only where this holds"},
        "init": {"type": "object", "description": "how this layer's tensors start: tensor name -> scheme"},
    }


def layer_schema() -> dict[str, Any]:
    ops.load_plugins()
    alternatives: list[dict[str, Any]] = [{"type": "string", "description": "an op or block with no args"}]
    for name, op in sorted(ops.REGISTRY.items()):
        args = loosen(op.Args.model_json_schema())
        args.pop("title", None)
        args.setdefault("properties", {}).update({k: v for k, v in wiring_props().items() if k in ("name", "id", "from", "init")})
        forms = [args, {"type": "null"}]
        if op.short:
            forms.append(loosen(op.Args.model_json_schema()["properties"][op.short]))
        alternatives.append({
            "type": "object", "description": op.doc or name,
            "properties": {name: {"anyOf": forms}, **wiring_props()},
            "required": [name], "additionalProperties": False,
        })
    # anything keyed by a name that is not an op: a block instance, seq, residual or parallel
    alternatives.append({"type": "object", "description": "a block instance or structure",
                         "minProperties": 1, "properties": wiring_props(),
                         "not": {"anyOf": [{"required": [n]} for n in sorted(ops.REGISTRY)]}})
    return {"anyOf": alternatives, "description": f"an op, a block, or one of {', '.join(STRUCTURES)}"}


def spec_schema() -> dict[str, Any]:
    schema = SpecModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archc spec"
    schema.setdefault("$defs", {})["layer"] = layer_schema()
    schema["properties"]["layers"] = {"type": "array", "items": {"$ref": "#/$defs/layer"}}
    rules = {"type": "array", "items": {"type": "object"}, "description": "init rules: {op, name, <tensor>: scheme}"}
    schema["properties"]["init"] = {"anyOf": [{"enum": ["torch", "paddle", "keras"]}, rules, {
        "type": "object", "properties": {"preset": {"enum": ["torch", "paddle", "keras"]}, "rules": rules},
        "additionalProperties": False}], "description": "how the weights start: a preset, rules, or both"}
    schema["properties"]["input"] = {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                                               {"type": "string", "pattern": r"^\d+(x\d+)*$"}]}
    return schema
