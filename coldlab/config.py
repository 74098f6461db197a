"""experiments.toml -> validated, fully resolved run specifications.

Layout::

    [defaults]                 # any experiment key; tables are merged key by key
    dataset = "mnist"
    train = { epochs = 50 }

    [[experiment]]
    study = "000"
    name = "ddpm-linear"
    degradation = { name = "gaussian", schedule = { name = "linear", beta_min = 1e-5 } }
    sampler = "ddpm"
    seeds = [0, 1, 2]          # one run per seed

Every error is a :class:`ColdlabError` located as ``FILE: EXPERIMENT: KEY: ...`` with a hint.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast

from coldlab.errors import ColdlabError
from coldlab.params import SEED_MAX, param, suggest, validate
from coldlab.sweeps import expand, locate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found]

COMPONENT_KEYS = ("dataset", "network", "degradation", "prior", "sampler")
DEFAULT_COMPONENTS: dict[str, Any] = {"prior": "gaussian"}


@dataclasses.dataclass
class LoopSettings:
    """The training-loop settings every kind of run has (diffusion and autoencoder runs)."""

    batch_size: int = param(128, "images per step", min=1, smoke=64)
    weight_decay: float = param(0.0, "Adam weight decay (003: 1e-4)", min=0)
    seed: int = param(0, "seed of the split, initialisation and training", min=0, max=SEED_MAX)
    val_fraction: float = param(0.2, "share of the training data held out for validation", min=0, lt=1)
    log_every: int = param(50, "record the train loss every this many steps", min=1, smoke=1)
    max_train_images: int = param(
        0,
        "use at most this many training images (0: all); the cap applies to the pool "
        "before the validation split (12000 with val_fraction 0.2 trains on 9600)",
        min=0,
        smoke=256,
    )
    precision: Literal["fp32", "bf16", "fp16"] = param(
        "fp32", "training arithmetic: fp32, or mixed precision with bf16 or fp16 autocast (fp16 with a gradient scaler)"
    )
    compile: bool = param(False, "torch.compile the network for training and sampling (the first steps pay the compilation)")
    channels_last: bool = param(False, "keep the network and its image batches in channels-last memory format")


@dataclasses.dataclass
class TrainSettings(LoopSettings):
    """Training settings of an experiment (the ``train`` table)."""

    epochs: int = param(50, "number of epochs", min=1, smoke=1)
    lr: float = param(2e-4, "Adam learning rate", gt=0)
    ema: float = param(0.0, "EMA decay of the weights used for sampling (0: no EMA)", min=0, lt=1)
    loss: Literal["mse", "l1"] = param("mse", "loss between the network output and the target")
    label_dropout: float = param(
        0.0,
        "probability that a training label is replaced by the null label (classifier-free guidance, 003: 0.1); needs network.conditional = true",
        min=0,
        lt=1,
    )


@dataclasses.dataclass
class EvalSettings:
    """Evaluation settings of an experiment (the ``eval`` table)."""

    #: settings that change how an evaluation runs, not what it computes: not part of the experiment's identity
    EXECUTION_ONLY: ClassVar[tuple[str, ...]] = ("batch_size",)

    every: int = param(5, "evaluate every this many epochs (and after the last; 0: only after the last)", min=0, smoke=1)
    samples: int = param(500, "number of generated samples for metrics (000: 500, 002: 1000)", min=1, smoke=16)
    grid: int = param(64, "samples in each saved grid", min=1, smoke=4)
    metrics: list[str | dict[str, Any]] = param([], "metric plugins to evaluate: names, or tables with a name and parameters")
    seed: int = param(1234, "seed of the fixed batch of start points (and of every random draw in evaluation)", min=0, max=SEED_MAX)
    final_metrics: list[str | dict[str, Any]] = param([], "metrics evaluated only after the last epoch (costly ones)")
    batch_size: int | Literal["auto"] = param(
        "auto",
        "samples per network call when sampling (and metrics' batch); 'auto': as many as half the GPU's free memory holds "
        "(250 on a CPU). Results do not depend on it (samples are drawn in lockstep), so it is not part of the experiment",
        min=1,
    )
    cuda_graphs: bool = param(False, "replay the sampling network's forward passes as CUDA graphs (torch.compile reduce-overhead; CUDA only)")
    keep_weights: bool = param(True, "save the sampling weights at every evaluation epoch (for coldlab eval --checkpoint)")
    guidance_scale: float | None = param(
        None,
        "classifier-free guidance w for generated samples (0: unconditional, 1: conditional; needs network.conditional = true); unset: no labels",
    )
    guidance_sweep: list[float] = param(
        [], "after the last epoch, evaluate `metrics` again at each of these guidance scales (one evaluation per w; needs a conditional network)"
    )
    sample_class: int | str = param("all", "with guidance, the class of every sample, or 'all' for balanced classes (written `class` in the TOML)")

    def __post_init__(self) -> None:
        if isinstance(self.sample_class, str) and self.sample_class != "all":
            raise ValueError(f"class must be 'all' or a class index, got {self.sample_class!r}")


EXPERIMENT_KEYS = ("study", "name", "kind", "seeds", "sweep", "sweep_mode", "trackers", "train", "eval", "latent", *COMPONENT_KEYS)
AUTOENCODER_KEYS = ("study", "name", "kind", "seeds", "sweep", "sweep_mode", "trackers", "train", "eval", "dataset", "autoencoder")
KINDS = ("diffusion", "autoencoder")


@dataclasses.dataclass(kw_only=True)
class RunSpec:
    """One run: an experiment at one seed, every component fully resolved. What every kind of run has;
    each kind has its own spec type (:class:`DiffusionSpec`, :class:`AutoencoderSpec`), and the stored spec
    (:meth:`to_dict`, JSON) holds exactly its kind's tables."""

    kind: ClassVar[str] = ""
    study: str
    name: str
    seed: int
    dataset: dict[str, Any]
    train: dict[str, Any]
    eval: dict[str, Any]
    # stored as fields of the run, not in the spec (they do not change what the run computes):
    experiment: str = ""  # the [[experiment]] this run comes from
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # the values a sweep set: dotted key -> value
    trackers: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # tracker tables the run reports to

    def __post_init__(self) -> None:
        self.experiment = self.experiment or self.name

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored with the run."""
        out = dataclasses.asdict(self)
        for key in ("experiment", "params", "trackers"):
            del out[key]
        return out


@dataclasses.dataclass(kw_only=True)
class DiffusionSpec(RunSpec):
    """A diffusion run (``kind = "diffusion"``, the default)."""

    kind: ClassVar[str] = "diffusion"
    network: dict[str, Any]
    degradation: dict[str, Any]
    prior: dict[str, Any]
    sampler: dict[str, Any]
    latent: dict[str, Any] | None = None  # latent diffusion: {"run": NAME, "study": S} or {"checkpoint": PATH}

    def to_dict(self) -> dict[str, Any]:
        """Without ``kind`` and, outside latent diffusion, without ``latent`` (specs stay as they were
        before either existed)."""
        out = super().to_dict()
        if out["latent"] is None:
            del out["latent"]
        return out


@dataclasses.dataclass(kw_only=True)
class AutoencoderSpec(RunSpec):
    """An autoencoder run (``kind = "autoencoder"``): the autoencoder trained, for latent diffusion."""

    kind: ClassVar[str] = "autoencoder"
    autoencoder: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **super().to_dict()}


SPEC_TYPES: dict[str, type[RunSpec]] = {"diffusion": DiffusionSpec, "autoencoder": AutoencoderSpec}


def stored_spec(stored: dict[str, Any], experiment: str = "") -> RunSpec:
    """A run's stored spec (JSON, as :meth:`RunSpec.to_dict` wrote it) as its kind's spec type: the one
    place the engine turns the store's JSON into a typed spec. Keys a spec type does not have are ignored."""
    kind = stored.get("kind", "diffusion")
    if kind not in SPEC_TYPES:
        raise ColdlabError(f"unknown run kind {kind!r} in a stored spec", hint="kinds: " + ", ".join(SPEC_TYPES), where=("kind",))
    cls = SPEC_TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("experiment", "params", "trackers")}
    values = {k: v for k, v in stored.items() if k in fields}
    values.setdefault("seed", (stored.get("train") or {}).get("seed", 0))  # a hand-written spec: the train seed
    values.setdefault("study", "")
    values.setdefault("name", "")
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING]
    if missing:
        raise ColdlabError(
            f"the stored {kind} spec lacks {', '.join(missing)}", hint="queue the run again from its experiments file", where=(missing[0],)
        )
    return cls(**values, experiment=experiment)


@dataclasses.dataclass
class AutoencoderTrainSettings(LoopSettings):
    """Training settings of a ``kind = "autoencoder"`` experiment (the ``train`` table)."""

    epochs: int = param(20, "number of epochs", min=1, smoke=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0)
    scale_images: int = param(5000, "training images the latents' scale factor is estimated on (0: all)", min=0, smoke=256)


@dataclasses.dataclass
class AutoencoderEvalSettings:
    """Evaluation settings of a ``kind = "autoencoder"`` experiment: reconstruction error and PSNR on the
    validation images, and a grid of validation images over their reconstructions."""

    every: int = param(5, "evaluate every this many epochs (and after the last)", min=0, smoke=1)
    grid: int = param(32, "validation images in each reconstruction grid (shown over their reconstructions)", min=1, smoke=4)
    batch_size: int = param(250, "images encoded and decoded per batch in evaluation", min=1)


SettingsT = TypeVar("SettingsT")


def settings_of(cls: type[SettingsT], values: dict[str, Any]) -> SettingsT:
    """A run's stored settings table (``train`` or ``eval``, already validated when it was queued) as
    its settings dataclass; settings added after the run was queued take their defaults."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in known})


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key in ("train", "eval") and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return cast("dict[str, Any]", tomllib.load(fh))
    except FileNotFoundError:
        raise ColdlabError("file not found", hint="give the path of an experiments TOML file", where=(str(path),)) from None
    except IsADirectoryError:
        raise ColdlabError("is a folder, not a file", hint="give the path of an experiments TOML file", where=(str(path),)) from None
    except UnicodeDecodeError as err:
        raise ColdlabError(
            f"not UTF-8 text (byte {err.start}: {err.reason})", hint="TOML files are UTF-8: save the file as UTF-8", where=(str(path),)
        ) from None
    except OSError as err:
        raise ColdlabError(f"cannot read the file: {err.strerror or err}", where=(str(path),)) from None
    except tomllib.TOMLDecodeError as err:
        raise ColdlabError(f"TOML syntax error: {err}", hint="fix the line named above", where=(str(path),)) from None


def _settings(cls: type, values: Any, what: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ColdlabError(f"'{what}' must be a table", hint=f"write {what} = {{ ... }}", where=(what,))
    try:
        clean, _ = validate(cls, values, component=f"{what} settings")
    except ColdlabError as err:
        raise err.at(what) from None
    merged = {**dataclasses.asdict(cls()), **clean}
    try:
        cls(**merged)  # value checks of __post_init__
    except ValueError as err:
        key = next((k for k in clean if k in str(err)), None)
        raise ColdlabError(str(err), where=(what, key) if key else (what,)) from None
    return merged


def resolve_metrics(registry: Any, metrics: list[Any], *, key: str = "metrics", taken: Collection[str] = ()) -> list[dict[str, Any]]:
    """Every entry of ``eval.<key>`` as a full table (name and all parameters); names must be unique."""
    resolved, seen = [], set(taken)
    for metric in metrics:
        try:
            full = registry.resolve("metric", metric)
        except ColdlabError as err:
            raise err.at("eval", key) from None
        if full["name"] in seen:
            raise ColdlabError(
                f"metric {full['name']!r} is listed twice", hint="list each metric once (in metrics or final_metrics)", where=("eval", key)
            )
        seen.add(full["name"])
        resolved.append(full)
    return resolved


def _check_keys(raw: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        key = unknown[0]
        known_elsewhere = key in EXPERIMENT_KEYS or key in AUTOENCODER_KEYS  # a key of the other kind
        raise ColdlabError(
            f"key {key!r} does not apply to {what}" if known_elsewhere else f"unknown key {key!r}{suggest(key, list(allowed))}",
            hint=f"keys of {what}: " + ", ".join(allowed),
            where=(key,),
        )
    for key in ("study", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ColdlabError(f"'{key}' must be a non-empty string", where=(key,))


def _resolve_trackers(raw: dict[str, Any], registry: Any) -> list[dict[str, Any]]:
    """``trackers = ["tensorboard", { name = "mlflow", ... }]``: each resolved, and available here."""
    given = raw.get("trackers", [])
    if not isinstance(given, list):
        raise ColdlabError("'trackers' must be a list", hint='e.g. trackers = ["tensorboard"]', where=("trackers",))
    out: list[dict[str, Any]] = []
    for tracker in given:
        try:
            full = registry.resolve("tracker", tracker)
        except ColdlabError as err:
            raise err.at("trackers") from None
        reason = registry.get("tracker", full["name"]).cls.unavailable()
        if reason:
            raise ColdlabError(reason, where=("trackers", full["name"]))
        if any(t["name"] == full["name"] for t in out):
            raise ColdlabError(f"tracker {full['name']!r} is listed twice", where=("trackers",))
        out.append(full)
    return out


def _seeded_runs(raw: dict[str, Any], default: int) -> list[tuple[int, str]]:
    """(seed, run name) of each of the experiment's runs: its name, or NAME-seedN with several seeds."""
    seeds = raw.get("seeds", [default])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ColdlabError("'seeds' must be a non-empty list of integers", hint="e.g. seeds = [0, 1, 2]", where=("seeds",))
    if any(not 0 <= s <= SEED_MAX for s in seeds):
        raise ColdlabError(f"'seeds' must be whole numbers from 0 to {SEED_MAX}", hint="e.g. seeds = [0, 1, 2]", where=("seeds",))
    if len(set(seeds)) != len(seeds):
        raise ColdlabError("'seeds' repeats a seed", where=("seeds",))
    return [(seed, raw["name"] if len(seeds) == 1 else f"{raw['name']}-seed{seed}") for seed in seeds]


def _resolve_autoencoder_experiment(raw: dict[str, Any], registry: Any) -> list[RunSpec]:
    """A ``kind = "autoencoder"`` experiment: an autoencoder trained on a dataset, for latent diffusion."""
    _check_keys(raw, AUTOENCODER_KEYS, "an autoencoder experiment")
    for key in ("dataset", "autoencoder"):
        if key not in raw:
            raise ColdlabError(f"missing '{key}'", hint=f'add {key} = {{ name = "..." }} to the experiment', where=(key,))
    resolved = {}
    for key in ("dataset", "autoencoder"):
        try:
            resolved[key] = registry.resolve(key, raw[key])
        except ColdlabError as err:
            raise err.at(key) from None
    train = _settings(AutoencoderTrainSettings, raw.get("train", {}), "train")
    evaluation = _settings(AutoencoderEvalSettings, raw.get("eval", {}), "eval")
    trackers = _resolve_trackers(raw, registry)
    return [
        AutoencoderSpec(
            study=raw["study"],
            name=name,
            seed=seed,
            dataset=resolved["dataset"],
            train={**train, "seed": seed},
            eval=evaluation,
            autoencoder=resolved["autoencoder"],
            experiment=raw["name"],
            trackers=trackers,
        )
        for seed, name in _seeded_runs(raw, train["seed"])
    ]


LATENT_HINT = 'write latent = { run = "NAME" } (an autoencoder experiment of this file) or latent = { checkpoint = "PATH" }'


def _resolve_latent(value: Any, base_dir: Path) -> dict[str, Any]:
    """``latent = { run = NAME [, study = S] }`` or ``{ checkpoint = PATH }`` (relative to the TOML file)."""
    if not isinstance(value, dict):
        raise ColdlabError("'latent' must be a table", hint=LATENT_HINT, where=("latent",))
    for key in value:
        if key not in ("run", "study", "checkpoint"):
            raise ColdlabError(f"unknown key {key!r}{suggest(key, ['run', 'study', 'checkpoint'])}", hint=LATENT_HINT, where=("latent", key))
    if ("run" in value) == ("checkpoint" in value):
        raise ColdlabError("give exactly one of run and checkpoint", hint=LATENT_HINT, where=("latent",))
    for key in ("run", "study", "checkpoint"):
        if key in value and (not isinstance(value[key], str) or not value[key]):
            raise ColdlabError(f"'{key}' must be a non-empty string", hint=LATENT_HINT, where=("latent", key))
    if "checkpoint" in value:
        path = (base_dir / value["checkpoint"]).resolve()
        if not path.is_file():
            raise ColdlabError(
                f"no autoencoder file {str(path)!r}",
                hint="give the autoencoder.pt an autoencoder run wrote (HOME/runs/NNNNN/autoencoder.pt)",
                where=("latent", "checkpoint"),
            )
        return {"checkpoint": str(path)}
    return {"run": value["run"], "study": value.get("study")}


def _link_latents(runs: list[RunSpec], experiments: dict[str, str]) -> None:
    """Point every latent diffusion run at the autoencoder run it names (same file); check the data agree."""
    autoencoders = {(r.study, r.name): r for r in runs if isinstance(r, AutoencoderSpec)}
    for run in runs:
        if not isinstance(run, DiffusionSpec) or not run.latent or "run" not in run.latent:
            continue
        wanted, study = run.latent["run"], run.latent.get("study")
        found = [r for (s, n), r in autoencoders.items() if n == wanted and (study is None or s == study)]
        if len(found) != 1:
            seeded = sorted(n for (s, n) in autoencoders if n.startswith(f"{wanted}-seed"))
            if found:
                why, hint = f"latent.run {wanted!r} names autoencoder runs of several studies", 'add study = "..." to latent'
            elif seeded:
                why, hint = f"latent.run {wanted!r} has several seeds", "name one of its runs: " + ", ".join(seeded)
            elif wanted in experiments and experiments[wanted] != "autoencoder":
                why, hint = f"latent.run {wanted!r} is a diffusion experiment, not an autoencoder", LATENT_HINT
            else:
                why = f"latent.run {wanted!r} names no autoencoder experiment in this file{suggest(wanted, [n for _, n in autoencoders])}"
                hint = 'add an [[experiment]] with kind = "autoencoder" and that name, or give latent = { checkpoint = "PATH" }'
            raise ColdlabError(why, hint=hint, where=(run.experiment, "latent", "run"))
        ae = found[0]
        if ae.dataset != run.dataset:
            raise ColdlabError(
                f"the autoencoder run {ae.name!r} was trained on {ae.dataset['name']!r}, not {run.dataset['name']!r}",
                hint="latent diffusion needs the autoencoder of the same dataset",
                where=(run.experiment, "latent", "run"),
            )
        run.latent = {"run": ae.name, "study": ae.study}


def _resolve_experiment(raw: dict[str, Any], registry: Any, base_dir: Path = Path(".")) -> list[RunSpec]:
    kind = raw.get("kind", "diffusion")
    if kind not in KINDS:
        raise ColdlabError(
            f"unknown kind {kind!r}{suggest(str(kind), list(KINDS))}", hint='kind is "diffusion" (the default) or "autoencoder"', where=("kind",)
        )
    if kind == "autoencoder":
        return _resolve_autoencoder_experiment(raw, registry)
    _check_keys(raw, EXPERIMENT_KEYS, "a diffusion experiment")
    for key in ("dataset", "network", "degradation", "sampler"):
        if key not in raw:
            raise ColdlabError(f"missing '{key}'", hint=f'add {key} = {{ name = "..." }} to the experiment or to [defaults]', where=(key,))
    resolved: dict[str, Any] = {}
    for key in COMPONENT_KEYS:
        try:
            resolved[key] = registry.resolve(key, raw.get(key, DEFAULT_COMPONENTS.get(key)))
        except ColdlabError as err:
            raise err.at(key) from None
    train = _settings(TrainSettings, raw.get("train", {}), "train")
    if train["label_dropout"] > 0 and not resolved["network"].get("conditional", False):
        raise ColdlabError(
            "label_dropout needs a class-conditional network",
            hint=f'set network = {{ name = "{resolved["network"]["name"]}", conditional = true }}',
            where=("train", "label_dropout"),
        )
    raw_eval = raw.get("eval", {})
    if isinstance(raw_eval, dict) and "class" in raw_eval:  # `class` is a Python keyword: the field is sample_class
        raw_eval = {**{k: v for k, v in raw_eval.items() if k != "class"}, "sample_class": raw_eval["class"]}
    evaluation = _settings(EvalSettings, raw_eval, "eval")
    if evaluation["guidance_scale"] is not None or evaluation["guidance_sweep"]:
        if not resolved["network"].get("conditional", False):
            key = "guidance_scale" if evaluation["guidance_scale"] is not None else "guidance_sweep"
            raise ColdlabError(
                f"{key} needs a class-conditional network",
                hint=f'set network = {{ name = "{resolved["network"]["name"]}", conditional = true }} '
                "and train it with train.label_dropout (e.g. 0.1)",
                where=("eval", key),
            )
        classes = registry.build("dataset", resolved["dataset"]).num_classes
        if isinstance(evaluation["sample_class"], int) and not 0 <= evaluation["sample_class"] < classes:
            raise ColdlabError(f"class {evaluation['sample_class']} is not one of the dataset's classes 0..{classes - 1}", where=("eval", "class"))
    evaluation["metrics"] = resolve_metrics(registry, evaluation["metrics"])
    evaluation["final_metrics"] = resolve_metrics(
        registry, evaluation["final_metrics"], key="final_metrics", taken={m["name"] for m in evaluation["metrics"]}
    )
    try:
        sampler = registry.build("sampler", resolved["sampler"])
        degradation = registry.build("degradation", resolved["degradation"])
        sampler.check(degradation)
    except ColdlabError as err:
        raise err.at("sampler") from None
    latent = _resolve_latent(raw["latent"], base_dir) if "latent" in raw else None
    trackers = _resolve_trackers(raw, registry)
    if latent is not None and degradation.images_only:
        raise ColdlabError(
            f"degradation {resolved['degradation']['name']!r} works on images only, not on latents",
            hint="use a noise or cold degradation that acts on any tensor (gaussian, blur, zoom)",
            where=("degradation",),
        )
    return [
        DiffusionSpec(
            study=raw["study"],
            name=name,
            seed=seed,
            train={**train, "seed": seed},
            eval=evaluation,
            latent=dict(latent) if latent else None,
            experiment=raw["name"],
            trackers=trackers,
            **{k: resolved[k] for k in COMPONENT_KEYS},
        )
        for seed, name in _seeded_runs(raw, train["seed"])
    ]


def load_experiments(path: str | Path, *, only: list[str] | None = None, registry: Any = None) -> list[RunSpec]:
    """Read, validate and expand an experiments file into run specifications.

    ``only`` keeps the experiments (or studies) with those names; an unknown one is an error.
    """
    if registry is None:
        from coldlab.plugins import get_registry

        registry = get_registry()
    path = Path(path)
    where = str(path)
    data = read_toml(path)
    for key in data:
        if key not in ("defaults", "experiment", "executor"):  # [executor]: coldlab.engine.executor_spec
            raise ColdlabError(
                f"unknown top-level key {key!r}{suggest(key, ['defaults', 'experiment', 'executor'])}",
                hint="use a [defaults] table, [[experiment]] entries and optionally an [executor] table",
                where=(where, key),
            )
    defaults = data.get("defaults", {})
    experiments = data.get("experiment", [])
    if not isinstance(defaults, dict):
        raise ColdlabError("'defaults' must be a table", where=(where, "defaults"))
    if not isinstance(experiments, list) or not experiments:
        raise ColdlabError("no experiments", hint="add [[experiment]] entries", where=(where,))
    runs: list[RunSpec] = []
    names: dict[str, str] = {}
    for i, raw in enumerate(experiments):
        if not isinstance(raw, dict):
            raise ColdlabError("each [[experiment]] must be a table", where=(where, f"experiment {i + 1}"))
        given = raw.get("name")
        label = given if isinstance(given, str) else f"experiment {i + 1}"
        if label in names:
            raise ColdlabError(f"experiment name {label!r} is used twice", hint="give each experiment its own name", where=(where, label, "name"))
        names[label] = raw.get("kind", "diffusion")
        try:
            combinations = expand(_merge(_defaults_for(defaults, raw), raw))
        except ColdlabError as err:
            raise err.at(where, label) from None
        for one, values in combinations:
            try:
                specs = _resolve_experiment(one, registry, path.parent)
            except ColdlabError as err:
                raise (locate(err, values) if values else err).at(where, label) from None
            for spec in specs:
                spec.experiment, spec.params = label, dict(values)
            runs.extend(specs)
    taken: dict[str, RunSpec] = {}
    for run in runs:  # `a` with seeds = [1, 2] makes a-seed1 and a-seed2: no experiment may be called that too
        other = taken.setdefault(run.name, run)
        if other is not run:
            first, second = sorted((other, run), key=lambda r: r.name != r.experiment)
            raise ColdlabError(
                f"run name {run.name!r} of experiment {second.experiment!r} (seed {second.seed}) is also the name of experiment {first.experiment!r}",
                hint="rename one of the experiments",
                where=(where, second.experiment, "seeds"),
            )
    try:
        _link_latents(runs, names)
    except ColdlabError as err:
        raise err.at(where) from None
    if only:
        known = {r.name for r in runs} | {r.study for r in runs} | set(names)
        for wanted in only:
            if wanted not in known:
                raise ColdlabError(
                    f"--only {wanted!r} matches no experiment or study{suggest(wanted, sorted(known))}",
                    hint="experiments: " + ", ".join(sorted(names)),
                    where=(where,),
                )
        kept = [r for r in runs if r.name in only or r.study in only or r.experiment in only]
        needed = {(r.latent["study"], r.latent["run"]) for r in kept if isinstance(r, DiffusionSpec) and r.latent and "run" in r.latent}
        runs = [r for r in runs if r in kept or (r.study, r.name) in needed]  # an autoencoder its latent runs need
    return runs


def _defaults_for(defaults: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The [defaults] an experiment inherits: an autoencoder experiment takes only the keys and
    train/eval settings it has (a default network or sampler is for the diffusion experiments)."""
    if raw.get("kind") != "autoencoder":
        return defaults
    sections = {"train": AutoencoderTrainSettings, "eval": AutoencoderEvalSettings}
    out = {}
    for key, value in defaults.items():
        if key in sections and isinstance(value, dict):
            fields = {f.name for f in dataclasses.fields(sections[key])}
            out[key] = {k: v for k, v in value.items() if k in fields}
        elif key in AUTOENCODER_KEYS:
            out[key] = value
    return out
