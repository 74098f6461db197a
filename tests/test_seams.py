"""The engine's seams (issue 15): contracts live with the components, a run is assembled once, run
kinds and component capabilities are dispatched through tables, not tested by name."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import torch

import coldlab
from coldlab.components.metric import EvalContext

ROOT = Path(coldlab.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_components_never_import_the_engine():
    offenders = {p.name: sorted(m for m in _imports(p) if m.startswith("coldlab.engine"))
                 for p in (ROOT / "components").glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_eval_context_is_public_and_the_engine_implements_it(tmp_path):
    import torch

    from coldlab.engine.evaluation import RunEvaluation
    from coldlab.plugins import get_registry

    assert coldlab.EvalContext is EvalContext
    registry = get_registry()
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 10}})
    net = registry.build("network", {"name": "cnn", "channels": [4]}, shape=(1, 8, 8), num_classes=0)
    ctx = RunEvaluation(registry=registry, dataset_spec={"name": "synthetic"}, net=net, degradation=deg,
                        sampler=registry.build("sampler", "ddim"), prior=registry.build("prior", "gaussian"), shape=(1, 8, 8),
                        num_classes=0, value_range=(-0.5, 0.5), device="cpu", samples=4, batch_size=2, seed=0,
                        cache_dir=tmp_path)
    assert isinstance(ctx, EvalContext)
    assert ctx.requested_labels() is None
    assert torch.equal(ctx.to_unit(torch.tensor([-0.5, 0.0, 0.5, 9.0])), torch.tensor([0.0, 0.5, 1.0, 1.0]))


def test_old_stores_get_experiment_and_seed_from_names_and_specs(tmp_path):
    import sqlite3

    from coldlab.store import connect
    from coldlab.store.migrations import MIGRATIONS

    raw = sqlite3.connect(tmp_path / "coldlab.db")
    raw.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for name, fn in MIGRATIONS[:4]:
        fn(raw)
        raw.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    for name, seed in (("a-seed3", 3), ("a-seed4-smoke", 4), ("b-seedless", None)):
        config = '{"train": {"seed": %d}}' % seed if seed is not None else "{}"
        raw.execute("INSERT INTO runs (study, name, config, created) VALUES ('s', ?, ?, 0)", (name, config))
    raw.commit()
    raw.close()
    rows = connect(tmp_path / "coldlab.db").execute("SELECT name, experiment, seed FROM runs ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("a-seed3", "a", 3), ("a-seed4-smoke", "a-smoke", 4), ("b-seedless", "b-seedless", None)]


def test_the_experiment_is_a_stored_field_not_parsed_from_the_run_name(tmp_path):
    """An experiment whose own name ends in -seedN keeps it; runs of one experiment pool, smoke runs apart."""
    from coldlab.config import load_experiments
    from coldlab.engine.budget import smoke
    from coldlab.engine.queueing import queue_runs
    from coldlab.home import Home
    from coldlab.report.collect import collect

    path = tmp_path / "e.toml"
    path.write_text('[defaults]\ndataset = "synthetic"\nnetwork = { name = "cnn", channels = [4] }\n'
                    'degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }\nsampler = "ddim"\n'
                    '[[experiment]]\nstudy = "s"\nname = "lr-seed7"\n'
                    '[[experiment]]\nstudy = "s"\nname = "pooled"\nseeds = [1, 2]\n')
    home = Home(tmp_path / "h")
    conn = home.connect()
    runs = load_experiments(path)
    list(queue_runs(conn, runs))
    list(queue_runs(conn, runs, prepare=smoke))
    rows = {r["name"]: (r["experiment"], r["seed"]) for r in conn.execute("SELECT * FROM runs")}
    assert rows == {"lr-seed7": ("lr-seed7", 0), "pooled-seed1": ("pooled", 1), "pooled-seed2": ("pooled", 2),
                    "lr-seed7-smoke": ("lr-seed7-smoke", 0), "pooled-seed1-smoke": ("pooled-smoke", 1),
                    "pooled-seed2-smoke": ("pooled-smoke", 2)}
    records = {r.name: r.experiment for r in collect(home).runs}
    assert records["lr-seed7"] == "lr-seed7" and records["pooled-seed2"] == "pooled"


MIMIC = '''
import dataclasses
from typing import Literal

from coldlab import hookimpl, param
from coldlab.default_plugins.gmm import GmmPrior
from coldlab.default_plugins.noise_degradations import MorphDegradation
from coldlab.default_plugins.samplers import DDIMSampler


class Mixture(GmmPrior):
    """gmm under another name, with its own parameter table (the smoke cap declared on max_images)."""

    @dataclasses.dataclass
    class Params:
        components: int = param(10, "number of mixture components", min=1)
        covariance: Literal["diag", "full"] = param("diag", "covariance type")
        iterations: int = param(100, "maximum EM iterations", min=1)
        reg: float = param(1e-6, "added to every variance", min=0)
        max_images: int = param(5000, "fit on at most this many training images", min=1, smoke=256)
        seed: int = param(0, "seed of the initial means", min=0)


class Blend(MorphDegradation):
    """morph under another name."""


class Implicit(DDIMSampler):
    """ddim under another name."""


@hookimpl
def register_priors(register):
    register("mixture", Mixture)

@hookimpl
def register_degradations(register):
    register("blend", Blend)

@hookimpl
def register_samplers(register):
    register("implicit", Implicit)
'''

PAIR = '''
[defaults]
dataset = "mnist"
network = {{ name = "cnn", channels = [4] }}
train = {{ epochs = 3 }}
eval = {{ metrics = ["classifier-fid"] }}

[[experiment]]
study = "s"
name = "{name}"
degradation = {{ name = "{degradation}", target_dataset = "fashion-mnist", schedule = {{ name = "cosine", T = 50 }} }}
prior = {{ name = "{prior}", components = 2 }}
sampler = {{ name = "{sampler}", steps = 40, eta = 0.0 }}
'''


def test_a_third_party_mimic_of_gmm_morph_and_ddim_is_treated_as_the_built_ins_are(tmp_path, plugin_env):
    """Capabilities, not names: a plugin package that registers gmm, morph and ddim under other names gets
    the same smoke budget, the same data checks, the same latent refusal and the same table cells."""
    from coldlab import ColdlabError
    from coldlab.config import load_experiments
    from coldlab.engine.availability import datasets_of
    from coldlab.engine.budget import smoke
    from coldlab.plugins import get_registry
    from coldlab.report.collect import RunRecord
    from coldlab.report.tables import _settings

    plugin_env("coldlab-mimic", "coldlab_mimic", MIMIC)
    registry = get_registry()
    names = {"builtin": ("gmm", "morph", "ddim"), "mimic": ("mixture", "blend", "implicit")}
    specs, renamed = {}, {"gmm": "mixture", "morph": "blend", "ddim": "implicit"}
    for label, (prior, degradation, sampler) in names.items():
        path = tmp_path / f"{label}.toml"
        path.write_text(PAIR.format(name=label, prior=prior, degradation=degradation, sampler=sampler))
        [run] = load_experiments(path, registry=registry)
        specs[label] = run.to_dict()
        with_latent = path.read_text().replace('prior = {', 'latent = { checkpoint = "ae.pt" }\nprior = {')
        (tmp_path / "ae.pt").write_bytes(b"")
        path.write_text(with_latent)
        try:
            load_experiments(path, registry=registry)
        except ColdlabError as err:
            assert "works on images only, not on latents" in str(err), str(err)
        else:
            raise AssertionError(f"{degradation} was accepted in a latent run")

    def same_but_names(spec):
        text = json.dumps(spec, sort_keys=True).replace('"builtin', '"mimic')
        for old, new in renamed.items():
            text = text.replace(f'"name": "{old}"', f'"name": "{new}"')
        return json.loads(text)

    small = {label: smoke(spec, registry) for label, spec in specs.items()}
    assert small["mimic"]["prior"]["max_images"] == 256 and small["mimic"]["sampler"]["steps"] == 10
    assert same_but_names(small["builtin"]) == small["mimic"]
    assert [registry.resolve("dataset", d)["name"] for d in datasets_of(specs["mimic"], registry)] == ["mnist", "fashion-mnist"]
    assert datasets_of(specs["builtin"], registry) == datasets_of(specs["mimic"], registry)

    def cells(label):
        record = RunRecord(id=1, study="s", name=label, status="finished", error=None, config=specs[label], epoch=3, epochs=3,
                           seconds=1.0, series={}, evaluations=[], artifacts=[])
        return _settings(record)

    assert cells("builtin") == {**cells("mimic"), "degradation": "morph", "sampler": "ddim eta=0.0"}
    assert cells("mimic")["degradation"] == "blend" and cells("mimic")["sampler"] == "implicit eta=0.0"


def test_a_data_session_owns_what_its_runs_loaded_and_drops_it_at_its_end(registry):
    """Datasets (and encoded latents) live as long as the session that loaded them: a worker's runs share
    them, and closing the session frees them; outside any session, the process's default session keeps them."""
    from coldlab.engine.data import load_dataset
    from coldlab.engine.session import current_session, data_session, default_session

    spec = registry.resolve("dataset", {"name": "synthetic", "train": 16, "test": 8})
    with data_session() as session:
        assert current_session() is session
        images, _ = load_dataset(registry, spec, "test")
        assert load_dataset(registry, spec, "test")[0] is images  # shared within the session
        assert len(session.datasets) == 1 and not any(k[0] == repr(spec) for k in default_session().datasets)
    assert session.datasets == {} and current_session() is default_session()
    with data_session():
        assert load_dataset(registry, spec, "test")[0] is not images  # a new session loads again
        assert torch.equal(load_dataset(registry, spec, "test")[0], images)


def test_one_helper_says_where_a_generator_draws():
    import torch

    from coldlab import generator_device

    assert generator_device(None) == torch.device("cpu")
    assert generator_device(None, "meta") == torch.device("meta")
    assert generator_device(torch.Generator()) == torch.device("cpu")
    sources = [p.read_text() for p in (ROOT / "default_plugins").rglob("*.py")]
    assert not any("generator.device if generator" in s for s in sources)


def test_each_run_kind_has_its_own_spec_type_and_old_autoencoder_specs_are_migrated(tmp_path):
    import sqlite3

    from coldlab.config import AutoencoderSpec, DiffusionSpec, load_experiments
    from coldlab.store import connect
    from coldlab.store.migrations import MIGRATIONS

    path = tmp_path / "e.toml"
    path.write_text('[[experiment]]\nstudy = "s"\nname = "vae"\nkind = "autoencoder"\ndataset = "synthetic"\n'
                    'autoencoder = { name = "vae" }\n'
                    '[[experiment]]\nstudy = "s"\nname = "ldm"\ndataset = "synthetic"\nnetwork = { name = "cnn", channels = [4] }\n'
                    'degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }\nsampler = "ddim"\n'
                    'latent = { run = "vae" }\n')
    vae, ldm = sorted(load_experiments(path), key=lambda r: r.name, reverse=True)
    assert isinstance(vae, AutoencoderSpec) and isinstance(ldm, DiffusionSpec)
    assert set(vae.to_dict()) == {"kind", "study", "name", "seed", "dataset", "train", "eval", "autoencoder"}
    assert "kind" not in ldm.to_dict() and ldm.to_dict()["latent"] == {"run": "vae", "study": "s"}

    raw = sqlite3.connect(tmp_path / "coldlab.db")
    raw.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for name, fn in MIGRATIONS[:5]:
        fn(raw)
        raw.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    old = {**vae.to_dict(), "network": {}, "degradation": {}, "prior": {}, "sampler": {}}
    raw.execute("INSERT INTO runs (study, name, config, created) VALUES ('s', 'vae', ?, 0)", (json.dumps(old, sort_keys=True),))
    raw.execute("INSERT INTO runs (study, name, config, created) VALUES ('s', 'ldm', ?, 0)", (json.dumps(ldm.to_dict(), sort_keys=True),))
    raw.commit()
    raw.close()
    stored = [json.loads(r[0]) for r in connect(tmp_path / "coldlab.db").execute("SELECT config FROM runs ORDER BY id")]
    assert stored == [json.loads(json.dumps(vae.to_dict())), json.loads(json.dumps(ldm.to_dict()))]


def test_reading_a_store_written_by_an_older_coldlab_brings_it_up_to_date_first(tmp_path):
    """coldlab export, ls and show open the store read-only: a store that lacks migrations is migrated once."""
    import sqlite3

    from coldlab.home import Home
    from coldlab.report.collect import collect
    from coldlab.store.migrations import MIGRATIONS, pending

    raw = sqlite3.connect(tmp_path / "coldlab.db")
    raw.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for name, fn in MIGRATIONS[:4]:
        fn(raw)
        raw.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    raw.execute("""INSERT INTO runs (study, name, config, created) VALUES ('s', 'a-seed2', '{"train": {"seed": 2}}', 0)""")
    raw.commit()
    assert pending(raw) == [name for name, _ in MIGRATIONS[4:]]
    raw.close()
    [run] = collect(Home(tmp_path)).runs
    assert (run.experiment, run.seed) == ("a", 2)
    assert pending(sqlite3.connect(tmp_path / "coldlab.db")) == []


def test_a_stored_spec_becomes_its_kinds_type_or_a_one_line_error():
    from coldlab import ColdlabError
    from coldlab.config import DiffusionSpec, stored_spec

    hand_written = {"dataset": "synthetic", "network": "cnn", "degradation": "gaussian", "prior": "gaussian", "sampler": "ddim",
                    "train": {"seed": 5}, "eval": {}}
    spec = stored_spec(hand_written, experiment="e")
    assert isinstance(spec, DiffusionSpec) and spec.seed == 5 and spec.experiment == "e" and spec.latent is None
    try:
        stored_spec({k: v for k, v in hand_written.items() if k != "network"})
    except ColdlabError as err:
        assert str(err).startswith("network: the stored diffusion spec lacks network"), str(err)
    else:
        raise AssertionError("a spec without its network was accepted")


def test_component_names_are_declared_attributes_filled_by_the_registry(registry):
    """Every base class declares component_name/component_kind; a built component carries its registered name,
    one constructed directly has the declared empty name and messages fall back to its class name."""
    from coldlab import ColdlabError
    from coldlab.components.naming import name_of
    from coldlab.default_plugins.samplers import DDIMSampler

    for base in (coldlab.Schedule, coldlab.Degradation, coldlab.Prior, coldlab.Network, coldlab.Sampler, coldlab.Dataset,
                 coldlab.Metric, coldlab.Autoencoder, coldlab.Executor):
        assert base.component_name == "" and base.component_kind == "", base
    built = registry.build("sampler", "ddim")
    assert (built.component_name, built.component_kind, name_of(built)) == ("ddim", "sampler", "ddim")
    direct = DDIMSampler(DDIMSampler.Params())
    assert direct.component_name == "" and name_of(direct) == "DDIMSampler"
    blur = registry.build("degradation", "blur")
    try:
        direct.check(blur)
    except ColdlabError as err:
        assert "sampler 'DDIMSampler' needs a degradation that mixes noise in by a schedule, not 'blur'" in str(err)
    else:
        raise AssertionError("ddim accepted blur")
