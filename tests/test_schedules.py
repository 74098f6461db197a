import math

import pytest
import torch

from coldlab import ColdlabError


def build(registry, **spec):
    return registry.build("schedule", spec)


def test_linear_matches_formula(registry):
    s = build(registry, name="linear", T=1000, beta_min=1e-4, beta_max=0.02)
    assert s.T == 1000 and s.beta.shape == (1001,)
    for t in (1, 2, 500, 999, 1000):
        assert s.beta[t].item() == pytest.approx(1e-4 + (0.02 - 1e-4) * (t - 1) / 999, rel=1e-12)
    assert s.beta[0] == 0 and s.alpha_bar[0] == 1
    assert s.alpha_bar[10].item() == pytest.approx(math.prod(1 - s.beta[k].item() for k in range(1, 11)), rel=1e-12)


def test_inverse_linear_is_linear_reversed(registry):
    lin = build(registry, name="linear", T=50, beta_min=1e-3, beta_max=0.05)
    inv = build(registry, name="inverse-linear", T=50, beta_min=1e-3, beta_max=0.05)
    for t in (1, 7, 50):
        assert inv.beta[t].item() == pytest.approx(lin.beta[51 - t].item(), rel=1e-12)
    assert inv.beta[1].item() == pytest.approx(0.05)


def test_constant(registry):
    s = build(registry, name="constant", C=0.1, T=200)
    assert torch.all(s.beta[1:] == 0.1)
    assert s.alpha_bar[200].item() == pytest.approx(0.9**200, rel=1e-10)


def f(t, T, s):
    return math.cos(((t / T + s) / (1 + s)) * math.pi / 2) ** 2


def test_cosine_matches_formula_without_clipping(registry):
    sch = build(registry, name="cosine", T=1000, s=0.008, max_beta=0.999)
    for t in (1, 100, 500, 900):
        expected_ab = f(t, 1000, 0.008) / f(0, 1000, 0.008)
        assert sch.alpha_bar[t].item() == pytest.approx(expected_ab, rel=1e-9)
        assert sch.beta[t].item() == pytest.approx(1 - expected_ab / (f(t - 1, 1000, 0.008) / f(0, 1000, 0.008)), rel=1e-9)


def test_cosine_clips_at_max_beta(registry):
    sch = build(registry, name="cosine", T=1000, max_beta=0.02)
    raw = [1 - f(t, 1000, 0.008) / f(t - 1, 1000, 0.008) for t in range(1, 1001)]
    first_clipped = next(t for t, b in enumerate(raw, start=1) if b > 0.02)
    assert sch.beta[first_clipped - 1].item() == pytest.approx(raw[first_clipped - 2], rel=1e-9)
    assert sch.beta[first_clipped].item() == pytest.approx(0.02)
    assert sch.beta.max().item() == pytest.approx(0.02)
    # alpha_bar follows the clipped betas, so it stays well above zero at T (report 000's setting)
    assert sch.alpha_bar[1000].item() == pytest.approx(math.prod(1 - b for b in sch.beta[1:].tolist()), rel=1e-9)
    assert sch.alpha_bar[1000].item() > 1e-6


def test_cosine_plain(registry):
    sch = build(registry, name="cosine-plain", T=100, eps=1e-8)
    for t, rel in ((1, 1e-7), (30, 1e-6), (99, 1e-3)):  # eps in the ratio compounds as alpha_bar -> 0
        assert sch.alpha_bar[t].item() == pytest.approx(math.cos(math.pi / 2 * t / 100) ** 2, rel=rel)
    assert sch.beta[100].item() == pytest.approx(0.999)  # the last ratio is clipped to stay finite


def test_summary_is_plot_friendly(registry):
    summary = build(registry, name="linear", T=10).summary()
    assert len(summary["t"]) == len(summary["beta"]) == len(summary["alpha_bar"]) == 11
    assert summary["alpha_bar_T"] == pytest.approx(summary["alpha_bar"][-1])


def test_invalid_schedule_is_a_clear_error(registry):
    with pytest.raises(ColdlabError, match="parameter 'C' must be at least 0, got -0.1"):
        build(registry, name="constant", C=-0.1, T=10)
    with pytest.raises(ColdlabError, match="every beta_t < 1"):
        registry.build("degradation", {"name": "gaussian", "schedule": {"name": "constant", "C": 1.5, "T": 10}})
    with pytest.raises(ColdlabError, match="parameter 'T' must be at least 1, got 0"):
        build(registry, name="linear", T=0)
