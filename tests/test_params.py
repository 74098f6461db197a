import pytest

from coldlab import ColdlabError


def message(registry, kind, spec):
    with pytest.raises(ColdlabError) as err:
        registry.build(kind, spec)
    return err.value


def test_unknown_name_lists_and_suggests(registry):
    err = message(registry, "schedule", "cosin")
    assert "unknown schedule 'cosin'" in str(err) and "did you mean 'cosine'" in str(err)
    assert "constant, cosine, cosine-plain, inverse-linear, linear" in str(err)


def test_unknown_parameter_lists_valid_ones(registry):
    err = message(registry, "schedule", {"name": "cosine", "max_bta": 0.1})
    assert "unknown parameter 'max_bta'" in str(err) and "did you mean 'max_beta'" in str(err)
    assert "valid parameters: T, max_beta, s" in str(err)
    assert err.where == ("max_bta",)


def test_wrong_types_say_what_was_expected(registry):
    err = message(registry, "schedule", {"name": "linear", "T": "1000"})
    assert "'T' must be int, got '1000'" in str(err)
    assert "must be int" in str(message(registry, "schedule", {"name": "linear", "T": 10.5}))
    assert "must be int" in str(message(registry, "schedule", {"name": "linear", "T": True}))
    err = message(registry, "degradation", {"name": "gaussian", "target": "noise"})
    assert "one of 'eps', 'x0', 'v'" in str(err)
    err = message(registry, "network", {"name": "cnn", "channels": [16, "32"]})
    assert "list of int" in str(err)


def test_ints_are_accepted_where_floats_are_declared(registry):
    s = registry.build("schedule", {"name": "constant", "C": 0, "T": 3})
    assert isinstance(s.params.C, float)


def test_nested_component_errors_name_the_path(registry):
    err = message(registry, "degradation", {"name": "gaussian", "schedule": {"name": "cosine", "T": "x"}})
    assert err.where == ("schedule", "T")
    assert str(err).startswith("schedule: T: ")
    err = message(registry, "degradation", {"name": "blur", "schedule": "linen"})
    assert err.where == ("schedule",) and "did you mean 'linear'" in str(err)


def test_located_errors_prepend_file_and_experiment(registry):
    err = message(registry, "schedule", {"name": "linear", "T": "x"})
    located = err.at("experiments.toml", "ddpm-linear", "degradation", "schedule")
    assert str(located).startswith("experiments.toml: ddpm-linear: degradation: schedule: T: ")


def test_a_spec_without_name_is_explained(registry):
    assert "table with a 'name' key" in str(message(registry, "schedule", {"T": 5}))


def test_describe_lists_documented_parameters(registry):
    rows = {r["name"]: r for r in registry.describe("degradation", "gaussian")}
    assert rows["schedule"]["kind"] == "schedule"
    assert rows["target"]["default"] == "eps" and rows["target"]["doc"]
