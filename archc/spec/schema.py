"""pydantic models of the spec format, and the mapping of validation errors to file:line:col."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from archc.errors import Location, SpecError, did_you_mean
from archc.spec.load import Source

SUPPORTED_VERSIONS = (1,)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_shape(v):
    """`[3, 224, 224]` or `"3x224x224"` -> list of ints."""
    if isinstance(v, str) and "$" not in v:
        try:
            return [int(p) for p in v.lower().split("x")]
        except ValueError:
            raise ValueError(f"expected a shape like [3, 224, 224] or '3x224x224', got {v!r}") from None
    return v


class Variant(Strict):
    doc: str = ""
    input: list[int] | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)   # keys replacing the spec's train: keys

    _shape = field_validator("input", mode="before")(parse_shape)


class ResidualDef(Strict):
    body: Any
    shortcut: Any = None        # None: identity only; 'auto'; 'none'; layers or {name, layers}
    post: Any = None
    merge: Literal["add", "mul", "concat"] = "add"


class ParallelDef(Strict):
    branches: dict[str, Any] | list[Any]
    merge: Literal["add", "mul", "concat"] = "concat"
    module_list: str | None = None      # list branches numbered 0.. in one nn.ModuleList (ASPP's `convs`)


class BlockDef(Strict):
    doc: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    let: dict[str, Any] = Field(default_factory=dict)   # values derived from params and c_in
    input: list[str] | None = None                      # names of the input's dims, known to __init__
    inputs: list[str] | None = None                     # names of several inputs (ids in its layers)
    init: Any = None                                    # rules for the block's own layers
    layers: list[Any] | None = None
    seq: list[Any] | None = None
    residual: ResidualDef | None = None
    parallel: ParallelDef | None = None

    @property
    def body_kind(self) -> str:
        kinds = [k for k in ("layers", "seq", "residual", "parallel") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(kinds)
        return kinds[0]

    @model_validator(mode="after")
    def _one_body(self):
        kinds = [k for k in ("layers", "seq", "residual", "parallel") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a block needs exactly one body (layers, seq, residual or parallel), "
                             f"found {', '.join(kinds) or 'none'}")
        return self


class ZooEntry(Strict):
    """A named network of the zoo: this spec, at a variant, and the reference it must match."""
    variant: str | None = None
    reference: str | None = None     # fixture name (archc/zoo/references.json), or none
    params: int | None = None        # a published parameter count to hold, where no fixture exists
    doc: str = ""


class SpecModel(Strict):
    archc: int
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    doc: str = ""
    input: list[int] | str
    vars: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, Variant] = Field(default_factory=dict)
    use: list[str] = Field(default_factory=list)
    blocks: dict[str, BlockDef] = Field(default_factory=dict)
    layers: list[Any]
    outputs: list[Any] | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    init: Any = None                 # a preset, rules, or {preset, rules} (spec/init.py reads it)
    zoo: dict[str, ZooEntry] = Field(default_factory=dict)

    _shape = field_validator("input", mode="before")(parse_shape)

    @field_validator("archc")
    @classmethod
    def _version(cls, v):
        if v not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported format version {v}; this archc reads version "
                             f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
        return v


class BlocksFile(Strict):
    """A file imported with `use:`: blocks only (a full spec is accepted too; its layers ignored)."""
    model_config = ConfigDict(extra="ignore")
    archc: int = 1
    use: list[str] = Field(default_factory=list)
    blocks: dict[str, BlockDef] = Field(default_factory=dict)


def _data_path(data: Any, loc: tuple) -> tuple:
    """The prefix of a pydantic error loc that exists in the data (drops union member tags)."""
    path = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            break
        path.append(part)
    return tuple(path)


def describe(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    if info is None:
        return "a valid value"
    return type_name(info.annotation)


def type_name(t) -> str:
    """A readable type: `int | list[int] | 'same' | 'valid'` (not `Union[int, ..., Literal[...]]`)."""
    import types
    import typing
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args if a is not type(None))
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(type_name, args))}]"
    if isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "")


def validate(model: type[BaseModel], data: Any, src: Source, base: tuple = (), what: str = ""):
    """model.model_validate(data), with the first error raised as a located SpecError."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise located(e, model, data, src, base, what) from None
    except SpecError as e:      # e.g. a ShapeError raised inside a validator: locate it here
        if e.loc is not None:
            raise
        raise SpecError(f"{what}: {e.message}" if what else e.message, src.loc(base)) from None


def located(e: ValidationError, model, data, src: Source, base: tuple, what: str) -> SpecError:
    errors = e.errors()
    # an unknown key explains a 'missing' one (a misspelt key is both): report the unknown key
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    path = _data_path(data, err["loc"])
    where = f"{what}: " if what else ""
    field = str(path[0]) if path else ""
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = ", ".join(model.model_fields) or "none"
        sub = _submodel(model, path[:-1])
        choices = sub.model_fields if sub else model.model_fields
        from archc.ops.base import OpArgs
        noun = "arg" if isinstance(model, type) and issubclass(model, OpArgs) else "key"
        return SpecError(f"{where}unknown {noun} '{key}'{did_you_mean(key, choices)}; expected one of: "
                         f"{', '.join(choices) if sub else allowed}", src.loc(base + path, key=True))
    if err["type"] == "missing":
        name = str(err["loc"][-1])
        hint = f" (the format version: write 'archc: {SUPPORTED_VERSIONS[-1]}' first)" if name == "archc" else ""
        return SpecError(f"{where}missing required '{name}'{hint}", src.loc(base + path))
    found = err.get("input")
    msg = err["msg"]
    if err["type"] == "model_type":      # a mapping was expected: say which keys it takes
        name = (err.get("ctx") or {}).get("class_name")
        cls = model if model.__name__ == name else globals().get(name)
        keys = f" with keys {', '.join(cls.model_fields)}" if isinstance(cls, type) else ""
        label = f"'{'.'.join(map(str, path))}': " if path else ""
        loc = src.loc(base + path)
        if found is None and not base and not path:     # an empty document
            return SpecError(f"the spec is empty: expected a mapping{keys}", Location(src.file, 1, 1))
        # a whole file that is no mapping may be no spec at all: name its type, never echo it
        got = repr(found) if path else f"a {type(found).__name__}"
        return SpecError(f"{where}{label}expected a mapping{keys}, got {got}", loc)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        dotted = ".".join(map(str, path))
        return SpecError(f"{where}'{dotted}': {msg}" if dotted else f"{where}{msg}", src.loc(base + path))
    if len([x for x in e.errors() if _data_path(data, x["loc"]) == path]) > 1 and field:
        msg = f"must be {describe(_submodel(model, path[:-1]) or model, str(path[-1]))}"
    elif msg.startswith("Input should"):     # pydantic: "Input should be greater than 0"
        msg = msg[len("Input "):]
    else:
        msg = msg[0].lower() + msg[1:]
    return SpecError(f"{where}'{'.'.join(map(str, path)) or 'value'}' {msg}, got {found!r}",
                     src.loc(base + path))


def _submodel(model, path: tuple):
    for part in path:
        info = model.model_fields.get(str(part)) if isinstance(part, str) else None
        ann = getattr(info, "annotation", None)
        ann = getattr(ann, "__args__", (ann,))[0] if ann is not None and not isinstance(ann, type) else ann
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif isinstance(part, int):
            continue
        else:
            return None
    return model
