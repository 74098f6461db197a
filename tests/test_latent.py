"""Latent diffusion (issue 8): autoencoder runs, latent runs naming them, the queue dependency, and
the experiments file's checks."""

import json
import sqlite3

import pytest
import torch

from coldlab import ColdlabError
from coldlab.config import load_experiments
from coldlab.engine.autoencoder_run import AutoencoderTrainer
from coldlab.engine.latent import AE_FILE, LatentCodec, load_autoencoder, save_autoencoder
from coldlab.engine.trainer import Trainer
from coldlab.plugins import get_registry
from coldlab.store import claim, connect, enqueue, finish, get_run, skip_orphans, waiting
from coldlab.testing import OracleNetwork
from test_engine import Recorder, cli

TOML = """
[defaults]
dataset = { name = "synthetic", train = 96, test = 16, size = 16 }
network = { name = "cnn", channels = [8, 8], time_hidden = [16] }
train = { epochs = 2, batch_size = 16, log_every = 2, val_fraction = 0.25 }
eval = { every = 1, grid = 4, samples = 8, metrics = ["test-loss", "rmse"] }

[[experiment]]
study = "lat"
name = "vae"
kind = "autoencoder"
autoencoder = { name = "vae", channels = [8, 16], latent_channels = 2 }
train = { epochs = 3 }

[[experiment]]
study = "lat"
name = "ldm"
latent = { run = "vae" }
degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }
sampler = "ddim"
"""


def write(tmp_path, text=TOML, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def specs(tmp_path, text=TOML):
    return {r.name: r.to_dict() for r in load_experiments(write(tmp_path, text))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An autoencoder run trained to its end (3 epochs on 72 synthetic images), with its recorder."""
    tmp = tmp_path_factory.mktemp("ae")
    spec = specs(tmp)["vae"]
    rec = Recorder()
    trainer = AutoencoderTrainer(spec, tmp / "runs" / "00001", registry=get_registry(), reporter=rec, cache_dir=tmp / "cache")
    assert trainer.run() == "finished"
    return tmp, spec, rec, trainer


# ---- the experiments file ------------------------------------------------------------------

def test_an_autoencoder_experiment_resolves_without_the_diffusion_defaults(tmp_path):
    s = specs(tmp_path)
    assert s["vae"]["kind"] == "autoencoder" and s["vae"]["autoencoder"]["latent_channels"] == 2
    # an autoencoder spec holds its kind's tables only; [defaults] are for diffusion runs
    assert not {"network", "degradation", "prior", "sampler"} & set(s["vae"]) and "metrics" not in s["vae"]["eval"]
    assert s["ldm"]["latent"] == {"run": "vae", "study": "lat"} and "kind" not in s["ldm"]
    # the sampler's table is the same as in an image run: what it clips to is a fact of the data (below)
    assert s["ldm"]["sampler"]["clip_x0"] is True and s["ldm"]["sampler"]["clip_value"] is None


@pytest.mark.parametrize("change, message", [
    (('kind = "autoencoder"', 'kind = "autoencoer"'), "vae: kind: unknown kind 'autoencoer' (did you mean 'autoencoder'?)"),
    (('train = { epochs = 3 }', 'train = { epochs = 3 }\nsampler = "ddpm"'), "vae: sampler: key 'sampler' does not apply to an autoencoder experiment (hint: keys of an autoencoder experiment: study, name, kind"),
    (('train = { epochs = 3 }', 'train = { epochs = 3 }\neval = { metrics = ["fid"] }'), "vae: eval: metrics: unknown parameter 'metrics'"),
    (('latent = { run = "vae" }', 'latent = { run = "vea" }'), "ldm: latent: run: latent.run 'vea' names no autoencoder experiment in this file (did you mean 'vae'?)"),
    (('latent = { run = "vae" }', 'latent = { run = "vae", checkpoint = "x.pt" }'), "ldm: latent: give exactly one of run and checkpoint"),
    (('latent = { run = "vae" }', 'latent = { checkpoint = "nowhere.pt" }'), "ldm: latent: checkpoint: no autoencoder file"),
    (('latent = { run = "vae" }', 'latent = { rn = "vae" }'), "ldm: latent: rn: unknown key 'rn' (did you mean 'run'?)"),
    (('latent = { run = "vae" }', 'latent = "vae"'), "ldm: latent: 'latent' must be a table"),
    (('kind = "autoencoder"\n', 'kind = "autoencoder"\ndataset = { name = "synthetic", train = 96, test = 16, size = 8 }\n'),
     "ldm: latent: run: the autoencoder run 'vae' was trained on 'synthetic'"),
    (('degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }',
      'degradation = { name = "morph", target_dataset = "synthetic" }'), "ldm: degradation: degradation 'morph' works on images only, not on latents"),
])
def test_latent_and_autoencoder_mistakes_are_located_errors(tmp_path, change, message):
    path = write(tmp_path, TOML.replace(*change))
    with pytest.raises(ColdlabError) as err:
        load_experiments(path)
    assert f"{path}: {message}" in str(err.value), str(err.value)
    assert "\n" not in str(err.value) and err.value.hint


def test_latent_run_naming_a_diffusion_experiment_or_several_seeds(tmp_path):
    text = TOML + '\n[[experiment]]\nstudy = "lat"\nname = "ldm2"\nlatent = { run = "ldm" }\n' \
                  'degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }\nsampler = "ddim"\n'
    with pytest.raises(ColdlabError, match="latent.run 'ldm' is a diffusion experiment, not an autoencoder"):
        load_experiments(write(tmp_path, text))
    seeded = TOML.replace('train = { epochs = 3 }', 'train = { epochs = 3 }\nseeds = [0, 1]')
    with pytest.raises(ColdlabError, match="has several seeds") as err:
        load_experiments(write(tmp_path, seeded))
    assert "vae-seed0, vae-seed1" in err.value.hint


def test_only_a_latent_experiment_brings_its_autoencoder_along(tmp_path):
    runs = load_experiments(write(tmp_path), only=["ldm"])
    assert [r.name for r in runs] == ["vae", "ldm"]
    assert [r.name for r in load_experiments(write(tmp_path), only=["vae"])] == ["vae"]


# ---- the autoencoder run -------------------------------------------------------------------

def test_an_autoencoder_run_records_losses_grids_reconstruction_and_its_file(trained):
    tmp, spec, rec, trainer = trained
    names = {r[0] for r in rec.rows}
    assert {"train_loss", "val_loss", "train_loss_step", "scale_factor"} <= names
    assert sorted(e for k, _, e in rec.files if k == "grid") == [1, 2, 3]
    assert [k for k, _, _ in rec.files].count("autoencoder") == 1
    last = rec.evaluations["training:3"]["results"]
    # known answer: recon-mse is the mean squared error of decode(mean of q(z|x)) on the validation images
    x = trainer.data.val
    with torch.no_grad():
        recon = trainer.net.decode(trainer.net.encode(x)[0])
    assert last["recon-mse"].value == pytest.approx(float((recon - x).square().mean()), rel=1e-5)
    unit = lambda images: (images + 0.5).clamp(0, 1)  # synthetic data lie in [-0.5, 0.5]; psnr as the psnr metric
    per_image = (unit(recon) - unit(x)).square().flatten(1).mean(1)
    assert last["psnr"].value == pytest.approx(float((10 * torch.log10(1 / per_image)).mean()), rel=1e-5)
    assert last["kl"].value > 0
    # the losses went down: the autoencoder learned something in 3 epochs
    train = [v for n, _, _, v, _ in rec.rows if n == "train_loss"]
    assert train[-1] < train[0]


def test_the_autoencoder_file_carries_the_scale_factor_that_gives_unit_variance_latents(trained):
    tmp, spec, rec, trainer = trained
    path = tmp / "runs" / "00001" / AE_FILE
    model = load_autoencoder(path, get_registry())
    factor = next(v for n, _, _, v, _ in rec.rows if n == "scale_factor")
    assert float(model.scale_factor) == pytest.approx(factor) and factor != 1.0
    codec = LatentCodec(model, path)
    z = codec.encode(trainer.data.train)
    assert z.shape[1:] == (2, 4, 4) and float(z.std()) == pytest.approx(1.0, rel=1e-4)  # estimated on all 72 images
    assert torch.allclose(codec.decode(z), model.decode(model.encode(trainer.data.train)[0]), atol=1e-5)
    with pytest.raises(ColdlabError, match="is not a coldlab autoencoder file"):
        torch.save({"model": {}}, tmp / "other.pt")
        load_autoencoder(tmp / "other.pt", get_registry())


def test_an_autoencoder_run_resumed_mid_epoch_ends_with_the_same_weights(tmp_path):
    spec = specs(tmp_path)["vae"]
    spec["eval"]["every"] = 0
    full = AutoencoderTrainer(spec, tmp_path / "full", registry=get_registry(), reporter=Recorder())
    full.run()
    first = AutoencoderTrainer(spec, tmp_path / "cut", registry=get_registry(), reporter=Recorder(stop_at=7))
    with pytest.raises(Exception):
        first.run()
    second = AutoencoderTrainer(spec, tmp_path / "cut", registry=get_registry(), reporter=Recorder())
    second.run()
    for a, b in zip(full.net.state_dict().values(), second.net.state_dict().values()):
        assert torch.equal(a, b)


# ---- latent diffusion ----------------------------------------------------------------------

def latent_trainer(trained, tmp_path):
    tmp, _, _, _ = trained
    spec = specs(tmp_path)["ldm"]
    spec["latent"] = {"checkpoint": str(tmp / "runs" / "00001" / AE_FILE)}
    return Trainer(spec, tmp_path / "ldm", registry=get_registry(), reporter=Recorder(), cache_dir=tmp_path / "cache")


def test_a_latent_run_trains_on_the_latents_of_its_split(trained, tmp_path):
    trainer = latent_trainer(trained, tmp_path)
    # latents are unbounded: ddim's x0 clipping has no data range to clip to (images: the dataset's)
    assert trainer.sampler.value_range is None and trainer.sampler.clip_bounds() is None
    assert trainer.images.value_range == (-0.5, 0.5)
    codec = trainer.codec
    assert trainer.data.shape == (2, 4, 4) and trainer.images.shape == (1, 16, 16)
    assert torch.allclose(trainer.data.train, codec.encode(trainer.images.train), atol=1e-6)
    assert torch.equal(trainer.data.train_labels, trainer.images.train_labels)


def test_with_a_perfect_latent_network_reconstructions_are_the_decoded_latents(trained, tmp_path):
    """Known answer: DDIM with an oracle in latent space returns each test image's latent exactly, so the
    reconstruction is decode(encode(x)) — the autoencoder's own round trip."""
    trainer = latent_trainer(trained, tmp_path)
    ctx = trainer.eval_context()
    x, _ = ctx.test_set()
    latents = ctx.encode(x[:4])
    ctx.net = OracleNetwork(latents, trainer.degradation)
    originals, recon, _ = ctx.reconstructions(15, 4)
    assert torch.equal(originals, x[:4])
    assert recon.shape == x[:4].shape
    assert torch.allclose(recon, ctx.decode(latents), atol=1e-4)


def test_latent_samples_are_decoded_from_latent_start_points(trained, tmp_path):
    trainer = latent_trainer(trained, tmp_path)
    ctx = trainer.eval_context(samples=4)
    target = ctx.encode(ctx.test_set()[0][:4])
    ctx.net = OracleNetwork(target, trainer.degradation)
    samples = ctx.samples()
    assert samples.shape == (4, 1, 16, 16)
    assert torch.allclose(samples, ctx.clamp(ctx.decode(target)), atol=1e-4)


# ---- the queue and the command line --------------------------------------------------------

def test_a_dependent_run_waits_for_its_dependency_and_is_skipped_when_it_fails(tmp_path):
    conn = connect(tmp_path / "coldlab.db")
    ae, _ = enqueue(conn, "s", "ae", {})
    ldm, _ = enqueue(conn, "s", "ldm", {}, depends_on=ae, priority=5)
    assert claim(conn, "w", "cpu")["id"] == ae  # the higher-priority dependent cannot go first
    assert claim(conn, "w2", "cpu") is None and waiting(conn) == 1
    finish(conn, ae, "w", "finished")
    assert claim(conn, "w2", "cpu")["id"] == ldm and waiting(conn) == 0
    ae2, _ = enqueue(conn, "s", "ae2", {})
    ldm2, _ = enqueue(conn, "s", "ldm2", {}, depends_on=ae2)
    claim(conn, "w", "cpu")
    finish(conn, ae2, "w", "failed", "boom")
    assert skip_orphans(conn) == [ldm2]
    row = get_run(conn, ldm2)
    assert row["status"] == "skipped" and "needs run 3 (ae2), which is failed" in row["error"]


def test_latent_diffusion_runs_end_to_end_through_coldlab_run(tmp_path):
    path = write(tmp_path)
    home = tmp_path / "home"
    out = cli("run", str(path), "--home", str(home), timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {r["name"]: r for r in json.loads(cli("ls", "--home", str(home), "--json").stdout)}
    assert runs["vae"]["status"] == runs["ldm"]["status"] == "finished"
    db = sqlite3.connect(home / "coldlab.db")
    assert db.execute("SELECT depends_on FROM runs WHERE name = 'ldm'").fetchone()[0] == runs["vae"]["id"]
    ldm = json.loads(cli("show", str(runs["ldm"]["id"]), "--home", str(home), "--json").stdout)
    assert ldm["config"]["latent"] == {"run": "vae", "study": "lat", "run_id": runs["vae"]["id"]}
    from PIL import Image

    grid = next(a["path"] for a in ldm["artifacts"] if a["kind"] == "grid")
    assert Image.open(grid).size == (38, 38)  # 2 x 2 decoded 16 x 16 images with torchvision's 2-pixel padding
    assert {"test-loss", "rmse"} <= set(ldm["metrics"])
    vae = json.loads(cli("show", str(runs["vae"]["id"]), "--home", str(home), "--json").stdout)
    assert {"recon-mse", "psnr", "kl", "scale_factor"} <= set(vae["metrics"])
    report = cli("export", "--home", str(home), "--out", str(tmp_path / "rep"), "--no-model-figures")
    assert report.returncode == 0, report.stderr
    table = (tmp_path / "rep" / "table-lat.md").read_text()
    assert "autoencoder vae" in table and "cnn in the latent space of vae" in table


def test_blur_refuses_a_kernel_wider_than_small_latents_allow():
    from coldlab.components.dataset import DataContext

    registry = get_registry()
    blur = registry.build("degradation", {"name": "blur"})  # kernel_size 11: pads 5 pixels
    with pytest.raises(ColdlabError, match="kernel_size 11 is too wide for circular padding of 4x4 images") as err:
        blur.prepare(DataContext(shape=(2, 4, 4), load=None))
    assert "kernel_size <= 9" in err.value.hint
    blur.prepare(DataContext(shape=(1, 28, 28), load=None))
    narrow = registry.build("degradation", {"name": "blur", "kernel_size": 9})
    narrow.prepare(DataContext(shape=(2, 4, 4), load=None))
    assert narrow.degrade(torch.rand(2, 2, 4, 4), narrow.T).shape == (2, 2, 4, 4)


def test_queueing_a_latent_study_again_finds_its_stored_runs(tmp_path):
    """The second `coldlab run --smoke` of a latent study: the stored latent run names its autoencoder run by id,
    under the autoencoder's stored (smoke) name; nothing counts as changed and nothing is queued twice."""
    from coldlab.engine.budget import smoke
    from coldlab.engine.queueing import queue_runs

    conn = connect(tmp_path / "coldlab.db")
    runs = load_experiments(write(tmp_path))
    first = list(queue_runs(conn, runs, smoke))
    again = list(queue_runs(conn, runs, smoke))
    assert [(r[2], r[3]) for r in first] == [(1, True), (2, True)] and [(r[2], r[3]) for r in again] == [(1, False), (2, False)]
    assert again[1][1]["latent"]["run_id"] == 1
