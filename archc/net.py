"""The Python API: a compiled network as users see it, from `archc.load`.

`Net` is the IR's `Network` (same data: nodes, module tree, outputs, vars) plus the views that
later pipeline stages make of it: the summary (archc.report), the PyTorch source and module
(archc.emit). It subclasses the IR so that every pipeline function takes it as it is; the IR
itself never reaches down the pipeline."""
from __future__ import annotations

import sys
import warnings
from dataclasses import fields

from archc.ir.graph import Network

HTML_ROWS = 60          # a notebook's table folds blocks (summary depth) to stay about this long


class WeightsWarning(UserWarning):
    """Tensors of a non-strict load that kept their initialisation (shape differs, or missing)."""


class Net(Network):
    """A compiled, analysed network: `.params`, `.macs`, `.output_shapes`, `.graph`,
    `.summary()`, `.source()`, `.to_module()`."""

    @classmethod
    def of(cls, network: Network) -> "Net":
        return cls(**{f.name: getattr(network, f.name) for f in fields(network)})

    def summary(self, format: str | None = None, depth: int | None = None, rf: bool = False,
                memory: bool = False, batch: int | None = None, dtype: str | None = None,
                optimizer: str | None = None, freeze=None):
        """The summary. Without `format`, the dict of `archc summary --format json`; with
        format="table" | "md" | "json" | "csv", the text `archc summary` prints for the same
        options (ending in a newline). `batch`, `dtype` ("float32", "bf16", "fp16") or
        `optimizer` imply `memory`, as on the command line. `freeze`: patterns (as `archc train
        --freeze`) whose layers are marked frozen, and left out of `trainable_params`."""
        from archc.report.summary import summary_for, summary_text
        options = dict(depth=depth, rf=rf, memory=memory, batch=batch, dtype=dtype, optimizer=optimizer,
                       freeze=freeze)
        return summary_for(self, **options) if format is None else summary_text(self, format, **options)

    def source(self) -> str:
        """The generated, standalone PyTorch source."""
        from archc.emit.pytorch import emit_source
        return emit_source(self)

    def to_module(self, weights=None, strict: bool = True, ignore_unexpected: bool = False):
        """The generated source, executed: an nn.Module. `weights`: a state_dict file, or a zoo
        entry's published weights by name ("torchvision", "torchvision:IMAGENET1K_V1", "timm",
        "timm:TAG"; downloaded once into torch's hub cache, checksum verified). strict=False
        loads by key: tensors missing from the file or of another shape (a new head) keep their
        initialisation, are listed in a WeightsWarning and in `module.archc_weights`; keys the
        network lacks are an error unless ignore_unexpected."""
        from archc.emit.pytorch import build_module
        if weights is not None:
            from archc.emit.pretrained import preflight
            preflight(self, weights, strict)
        model = build_module(self)
        if weights is not None:
            from archc.emit.pretrained import load_named_or_file
            report = load_named_or_file(model, self, weights, strict=strict, ignore_unexpected=ignore_unexpected,
                                        say=lambda line: print(line, file=sys.stderr))
            model.archc_weights = report
            if report.kept:
                warnings.warn(str(report), WeightsWarning, stacklevel=2)
        return model

    # -- notebooks -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from archc.report.formats import human, shape
        outs = [(name, list(n.out if n else self.input)) for name, n, train in self.outputs if not train]
        out = shape(outs[0][1]) if len(outs) == 1 else ", ".join(f"{k} {shape(v)}" for k, v in outs)
        title = self.name + (f" ({self.variant})" if self.variant else "")
        return (f"<archc.Net {title}: input {shape(list(self.input))} -> {out}, "
                f"{self.params:,} params, {human(self.macs)} MACs>")

    def _repr_html_(self) -> str:
        from archc.report.formats import to_html
        from archc.report.summary import summary_dict
        depth = None
        if len(self.nodes) > HTML_ROWS:        # the deepest folding that fits (depth 1 at worst)
            deepest = max(n.name.count(".") + 1 for n in self.nodes)
            rows = {d: len({".".join(n.name.split(".")[:d]) for n in self.nodes}) for d in range(1, deepest)}
            depth = max((d for d, k in rows.items() if k <= HTML_ROWS), default=1)
        note = "" if depth is None else f"blocks folded to depth {depth}; net.summary(format='table') shows every op"
        return to_html(summary_dict(self, depth=depth), note=note, limit=HTML_ROWS)
