from pathlib import Path

import pytest

from coldlab import ColdlabError
from coldlab.config import load_experiments

REPO = Path(__file__).resolve().parents[1]

GOOD = """
[defaults]
dataset = { name = "synthetic", train = 64, test = 16 }
network = { name = "cnn", channels = [8, 8] }
train = { epochs = 2, batch_size = 16 }

[[experiment]]
study = "s1"
name = "ddpm"
degradation = { name = "gaussian", schedule = { name = "linear", T = 50 } }
sampler = "ddpm"
seeds = [0, 1, 2]
train = { lr = 1e-3 }

[[experiment]]
study = "s2"
name = "zoom"
degradation = "zoom"
prior = "centre-pixels"
sampler = { name = "cold-improved" }
"""


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ColdlabError) as err:
        load_experiments(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return message


def test_good_file_expands_seeds_and_merges_defaults(tmp_path):
    runs = load_experiments(write(tmp_path, GOOD))
    assert [r.name for r in runs] == ["ddpm-seed0", "ddpm-seed1", "ddpm-seed2", "zoom"]
    first = runs[0]
    assert first.train["epochs"] == 2 and first.train["lr"] == 1e-3 and first.train["batch_size"] == 16
    assert [r.train["seed"] for r in runs[:3]] == [0, 1, 2]
    assert first.degradation["schedule"] == {"name": "linear", "T": 50, "beta_min": 1e-4, "beta_max": 0.02}
    assert first.prior == {"name": "gaussian"}
    assert runs[3].prior["levels"] == 256 and runs[3].train["lr"] == 2e-4
    assert runs[3].network["time_hidden"] == [128, 128]  # every default filled in


def test_only_filters_by_experiment_or_study(tmp_path):
    path = write(tmp_path, GOOD)
    assert [r.name for r in load_experiments(path, only=["s2"])] == ["zoom"]
    assert len(load_experiments(path, only=["ddpm"])) == 3
    with pytest.raises(ColdlabError, match="--only 'zom' matches no experiment or study.*did you mean 'zoom'"):
        load_experiments(path, only=["zom"])


CASES = {
    "unknown component": (GOOD.replace('sampler = "ddpm"', 'sampler = "dpm"'), "ddpm: sampler: unknown sampler 'dpm' (did you mean 'ddpm'?)"),
    "unknown parameter": (GOOD.replace("T = 50", "Steps = 50"), "ddpm: degradation: schedule: Steps: unknown parameter 'Steps' for schedule 'linear' (hint: valid parameters: T, beta_max, beta_min)"),
    "wrong type": (GOOD.replace("T = 50", 'T = "50"'), "ddpm: degradation: schedule: T: schedule 'linear' parameter 'T' must be int"),
    "unknown experiment key": (GOOD.replace('study = "s2"', 'study = "s2"\nsamplr = "x"'), "zoom: samplr: unknown key 'samplr' (did you mean 'sampler'?)"),
    "train key": (GOOD.replace("lr = 1e-3", "learning_rate = 1e-3"), "ddpm: train: learning_rate: unknown parameter 'learning_rate'"),
    "sampler mismatch": (GOOD.replace('name = "cold-improved"', 'name = "ddim"'), "zoom: sampler: sampler 'ddim' needs a degradation that mixes noise"),
    "bad seeds": (GOOD.replace("seeds = [0, 1, 2]", 'seeds = ["a"]'), "ddpm: seeds: 'seeds' must be a non-empty list of integers"),
    "metric": (GOOD.replace("seeds = [0, 1, 2]", 'eval = { metrics = ["fidd"] }'), "ddpm: eval: metrics: unknown metric 'fidd'"),
    "missing component": (GOOD.replace('degradation = "zoom"\n', ""), "zoom: degradation: missing 'degradation'"),
    "top level": (GOOD + "\n[experiments]\nx = 1\n", "unknown top-level key 'experiments'"),
    "duplicate name": (GOOD.replace('name = "zoom"', 'name = "ddpm"'), "ddpm: name: experiment name 'ddpm' is used twice"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_errors_name_file_experiment_and_key(tmp_path, case):
    text, expected = CASES[case]
    assert expected in error(tmp_path, text)


def test_toml_syntax_error_gives_the_line(tmp_path):
    message = error(tmp_path, GOOD.replace('study = "s2"', 'study = "s2'))
    assert "TOML syntax error" in message and "line 16" in message


def test_missing_file(tmp_path):
    with pytest.raises(ColdlabError, match="file not found"):
        load_experiments(tmp_path / "nope.toml")


def test_root_experiments_file_holds_the_four_studies():
    runs = load_experiments(REPO / "experiments.toml")
    by_study = {}
    for r in runs:
        by_study.setdefault(r.study, []).append(r)
    assert sorted(by_study) == ["000", "002", "003", "003-cfg", "003-latent", "004", "cosine-max-beta"]
    swept = by_study["cosine-max-beta"]
    assert [r.degradation["schedule"]["max_beta"] for r in swept] == [0.02, 0.1, 0.999] and {r.experiment for r in swept} == {"ddpm-cosine"}
    vae, *latent = by_study["003-latent"]
    assert vae.kind == "autoencoder" and vae.autoencoder["name"] == "vae"
    assert [r.latent for r in latent] == [{"run": "003-vae-mnist", "study": "003-latent"}] * 2
    assert {r.sampler["name"] for r in latent} == {"ddpm", "ddim"} and any(r.eval["guidance_sweep"] for r in latent)
    [cfg] = by_study["003-cfg"]
    assert cfg.network["conditional"] and cfg.train["label_dropout"] == 0.1 and cfg.eval["guidance_sweep"] == [0, 1, 3, 5]
    zoom = next(r for r in by_study["000"] if r.degradation["name"] == "zoom")
    assert zoom.prior["name"] == "centre-pixels" and zoom.sampler["name"] == "cold-naive" and zoom.train["epochs"] == 100
    cosine = next(r for r in by_study["000"] if r.degradation.get("schedule", {}).get("name") == "cosine")
    assert cosine.degradation["schedule"]["max_beta"] == 0.02
    blur = next(r for r in by_study["002"] if r.degradation["name"] == "blur")
    assert blur.degradation["schedule"] == {"name": "constant", "T": 100, "C": 1.0} and blur.degradation["kernel_size"] == 11
    assert {r.sampler.get("steps") for r in by_study["003"]} == {None, 10, 50, 250}
    morph = [r for r in by_study["004"] if r.degradation["name"] == "morph"]
    assert {r.degradation["schedule"]["name"] for r in morph} == {"linear", "cosine"}
    assert all(r.sampler["name"] == "cold-improved" and r.degradation["target_dataset"] == "fashion-mnist" for r in morph)
