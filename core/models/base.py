"""Model registry. Every model names its probe-able layers (`layer_names`), in order, so heatmaps,
hooks and activation patching address layers the same way across architectures."""
from __future__ import annotations

import inspect
import io
import math
import numbers
import zipfile

import torch
from torch import nn

from ..errors import ResidueError
from ..params import shown
from ..registry import Registry

models: Registry = Registry("model")


class Classifier(nn.Module):
    """Base for Residue's models: a stack of named blocks ending in `head` (the logits).

    `blocks` is usually a registered `nn.ModuleDict` (parameter names `blocks.<layer>.…`). An architecture that
    keeps another library's module names (the torchvision twins in `resnet.py`, `vgg.py`, whose state dicts load
    unchanged) registers its modules under those names and calls `view_blocks`: the named layers are then a view
    onto the same modules, outside the state dict."""

    blocks: nn.ModuleDict

    @property
    def layer_names(self) -> list[str]:
        return list(self.blocks.keys())

    @property
    def hidden_layer_names(self) -> list[str]:
        """Every layer but the logits: the 'deep features' the defences and probes look at."""
        return self.layer_names[:-1]

    @classmethod
    def check_options(cls, **options) -> dict:
        """Validate the architecture's options before any weights are allocated (also at config time)."""
        return options

    def view_blocks(self, blocks: dict[str, nn.Module]) -> None:
        """Name the probe-able layers as a view onto modules registered under other names: they run (and
        hooks on them fire) through `forward`, but add no second copy of any parameter to the state dict."""
        object.__setattr__(self, "blocks", nn.ModuleDict(blocks))

    def initialise(self, g: torch.Generator) -> None:
        """PyTorch's default init of every Linear and Conv2d, drawn from `g` (an architecture whose reference
        implementation initialises otherwise overrides this)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                default_init(m, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (input to the head), flattened."""
        for name, block in self.blocks.items():
            if name == "head":
                break
            x = block(x)
        return x.flatten(1)


@torch.no_grad()
def default_init(m: nn.Linear | nn.Conv2d, g: torch.Generator) -> None:
    """PyTorch's own `reset_parameters` for a Linear or Conv2d layer, drawn from `g`."""
    w = torch.empty(m.weight.shape)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    m.weight.copy_(w)
    if m.bias is not None:
        fan_in = m.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=g))


def init_weights(model: nn.Module, seed: int) -> nn.Module:
    """The architecture's initialisation, drawn from a private generator: same seed, same weights, on any
    thread."""
    g = torch.Generator().manual_seed(int(seed))
    if isinstance(model, Classifier):
        model.initialise(g)
    else:
        Classifier.initialise(model, g)  # type: ignore[arg-type]
    return model


def whole_numbers(name: str, value, low: int, high: int, length: tuple[int, int]) -> list[int]:
    """A list of whole numbers in [low, high] (or one number, for length (1, 1)), else one readable error."""
    items = value if isinstance(value, (list, tuple)) else [value]
    ok = (length[0] <= len(items) <= length[1]
          and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and low <= v <= high and v == int(v)
                  for v in items))
    if not ok:
        count = f"{length[0]}" if length[0] == length[1] else f"{length[0]} to {length[1]}"
        raise ResidueError(f"{name} must be {count} whole number(s) in [{low}, {high}], got {shown(value)}.")
    return [int(v) for v in items]


def check_width(name: str, value) -> float:
    """A width multiplier: a number in [1/64, 4] (1 is the reference network; 0.125 a narrow one for CPUs)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 1 / 64 <= value <= 4:
        raise ResidueError(f"{name} must be a number in [0.015625, 4] (1: the reference width), got {shown(value)}.")
    return float(value)


def check_model_options(name: str, options: dict) -> dict:
    """Names and values of a model's options, checked without building it (config validation)."""
    cls = models.get(name)
    known = [p for p in inspect.signature(cls).parameters if p not in ("input_shape", "n_classes")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ResidueError(f"model '{name}': unknown option {unknown[0]!r}; known: {known}.")
    return cls.check_options(**options)


def build_model(name: str, input_shape: tuple[int, ...], n_classes: int, seed: int = 0, **params) -> Classifier:
    """Build a registered architecture with deterministic initial weights."""
    cls = models.get(name)
    check_model_options(name, params)
    try:
        model = cls(tuple(input_shape), int(n_classes), **params)
    except ResidueError:
        raise
    except (TypeError, ValueError) as e:
        raise ResidueError(f"model '{name}': bad option ({e}).") from None
    model.input_shape = tuple(int(v) for v in input_shape)  # what it reads (sizes memory budgets; not a weight)
    model.registered = name  # the architecture's registered name (messages about checkpoints say it)
    return init_weights(model, seed)


def check_state_dict(model: nn.Module, state: dict) -> None:
    """Refuse a checkpoint that does not fit the architecture, naming the keys and shapes that differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    what = f" '{model.registered}'" if isinstance(getattr(model, "registered", None), str) else ""
    if missing or extra:
        parts = [f"{len(ks)} {word} ({', '.join(ks[:3])}{', …' if len(ks) > 3 else ''})"
                 for ks, word in ((missing, "missing"), (extra, "unexpected")) if ks]
        raise ResidueError(f"Checkpoint does not match the architecture{what}: keys {'; '.join(parts)}.")
    wrong = [k for k, v in own.items()
             if not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        def got(k):
            return tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k]).__name__

        more = f" ({len(wrong) - 1} more tensor(s) differ: {', '.join(wrong[1:4])}{', …' if len(wrong) > 4 else ''})"
        k = wrong[0]
        raise ResidueError(f"Checkpoint tensor '{k}' has shape {got(k)}, the model expects {tuple(own[k].shape)}"
                           f"{more if len(wrong) > 1 else ''}{_stem_hint(state, own)}.")
    for k, v in own.items():
        if v.is_floating_point() and not (state[k].is_floating_point() and torch.isfinite(state[k]).all()):
            what = "non-finite (NaN/inf) values" if state[k].is_floating_point() else f"dtype {state[k].dtype}"
            raise ResidueError(f"Checkpoint tensor '{k}' has {what}; the model needs finite floating-point weights.")


def _stem_hint(state: dict, own: dict) -> str:
    """A ResNet checkpoint of the other stem: say which architecture it is."""
    a, b = state.get("conv1.weight"), own.get("conv1.weight")
    if isinstance(a, torch.Tensor) and b is not None and a.dim() == 4 and a.shape[-1] != b.shape[-1]:
        return (f"; a {a.shape[-1]}x{a.shape[-1]} first convolution is "
                f"{'resnet18 (the ImageNet stem)' if a.shape[-1] == 7 else 'resnet18_cifar (the CIFAR stem)'}")
    return ""


WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")  # DataParallel/DDP, a wrapping module, torch.compile


def unwrapped(state: dict, model: nn.Module) -> dict:
    """The state dict as the bare model names it: a prefix that every key carries and the model's own keys do not
    (`module.` from DataParallel, `model.` from a wrapping module, `_orig_mod.` from torch.compile) is dropped,
    repeatedly; batch norm's `num_batches_tracked` counters, which older checkpoints (torchvision's own released
    ImageNet weights) do not hold and which no forward pass reads, are taken from the model."""
    own = model.state_dict()
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if all(isinstance(k, str) and k.startswith(p) for k in state)
                       and not any(k.startswith(p) for k in own)), None)
        if prefix is None or not state:
            break
        state = {k[len(prefix):]: v for k, v in state.items()}
    counters = {k: v for k, v in own.items() if k.endswith("num_batches_tracked") and k not in state}
    return {**state, **counters} if counters and any(k in state for k in own) else state


MAX_CHECKPOINT_BYTES = 100 * 2**20


def load_checkpoint(raw: bytes, template: nn.Module, max_bytes: int = MAX_CHECKPOINT_BYTES) -> dict:
    """Parse a checkpoint as plain tensors (`weights_only=True`: a pickle that would run code is refused, never
    executed), unwrap it (`unwrapped`) and check that it fits `template`. Returns the state dict. The dashboard's
    upload and the command line's `--checkpoint` both come here."""
    if len(raw) > max_bytes:
        raise ResidueError(f"Checkpoint is over the {max_bytes // 2**20} MB limit.")
    if not raw:
        raise ResidueError("Checkpoint file is empty.")
    member = _checkpoint_container(raw, max_bytes)
    try:
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - say what is wrong from the bytes, not from torch's exception
        raise ResidueError(_unreadable_checkpoint(raw, member, e)) from None
    if isinstance(obj, dict):
        for k in ("state_dict", "state", "model_state_dict", "model", "net"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj:
        raise ResidueError("Checkpoint must hold a state dict (layer name -> tensor).")
    obj = unwrapped(obj, template)
    check_state_dict(template, obj)
    return obj


SAVE_HINT = "save one with torch.save(model.state_dict(), path)"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the number torch's pre-1.6 format pickles first


def _checkpoint_container(raw: bytes, max_bytes: int) -> str | None:
    """Check the container before torch opens it: torch.save's zip archive (returns the name of the pickle
    inside, refusing an archive that unpacks past the limit) or a legacy/raw pickle (returns None). Anything
    else is refused saying what the file is."""
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                infos = z.infolist()
        except Exception:  # noqa: BLE001 - BadZipFile, a cut central directory...
            raise ResidueError("Checkpoint is a damaged or truncated PyTorch file (its zip archive cannot be read; "
                               "the end of the file may be missing): download or save it again.") from None
        pkl = [i.filename for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
        if not pkl:
            raise ResidueError(f"Checkpoint is a zip archive but not a PyTorch checkpoint (it holds no data.pkl); "
                               f"{SAVE_HINT}.")
        if sum(i.file_size for i in infos) > max_bytes:
            raise ResidueError(f"Checkpoint unpacks to over the {max_bytes // 2**20} MB limit.")
        return pkl[0]
    if raw[:1] == b"\x80" and raw[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return None
    head = raw[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the end of the sample is still text
        text = head[:e.start].decode("utf-8") if e.start >= len(head) - 3 else None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        raise ResidueError(f"Checkpoint is a text file, not a PyTorch checkpoint; {SAVE_HINT}.")
    raise ResidueError(f"Checkpoint is not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle); "
                       f"{SAVE_HINT}.")


def _unreadable_checkpoint(raw: bytes, member: str | None, error: Exception) -> str:
    """Why torch refused a checkpoint whose container looked right: read the pickle's opcodes (never run
    them) for the callables it would import; if it breaks off first, it is damaged or truncated."""
    import pickletools

    names: list[str] = []
    strings: list[str] = []
    magic = member is not None  # a legacy torch file opens with a pickled magic number
    try:
        stream = zipfile.ZipFile(io.BytesIO(raw)).open(member) if member else io.BytesIO(raw)
        while stream.read(1) == b"\x80":  # a legacy torch file is several pickles in a row, then raw storage bytes
            stream.seek(-1, io.SEEK_CUR)
            for op, arg, _ in pickletools.genops(stream):
                if isinstance(arg, str):
                    strings.append(arg)
                magic = magic or arg == LEGACY_MAGIC
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
        broken = False
    except Exception:  # noqa: BLE001 - the pickle breaks off, or its archive member is damaged
        broken = True
    foreign = sorted({n for n in names if not n.startswith(("torch.", "collections."))})
    if foreign:
        return (f"Checkpoint holds Python objects besides tensors ({', '.join(foreign[:3])}; a pickle could run "
                f"code): refused by weights_only=True loading; {SAVE_HINT}.")
    if not magic and not broken:
        return f"Checkpoint is a plain pickle, not a PyTorch checkpoint; {SAVE_HINT}."
    if broken:
        return "Checkpoint is damaged or truncated (its pickle stream breaks off or is corrupt): download or save it again."
    return f"Checkpoint could not be read as plain weights (weights_only=True: {type(error).__name__}); {SAVE_HINT}."
