import pytest
import torch

from coldlab import ColdlabError

SMALL = {
    "cnn": {"name": "cnn", "channels": [8, 16, 8]},
    "convnext-unet": {"name": "convnext-unet", "base_channels": 8, "channel_mults": [1, 2, 4]},
    "convnext-unet-004": {"name": "convnext-unet", "base_channels": 8, "channel_mults": [1, 2], "pointwise_kernel": 3, "attention": False},
    "ddpm-unet": {"name": "ddpm-unet", "base_channels": 8, "channel_mults": [1, 2, 2, 2], "res_blocks": 1, "attention_levels": [1]},
}


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("key", list(SMALL))
def test_forward_shape_and_gradients(registry, key, shape):
    torch.manual_seed(0)
    net = registry.build("network", SMALL[key], shape=shape)
    z = torch.randn(3, *shape)
    t = torch.tensor([0.0, 0.5, 1.0])
    out = net(z, t)
    assert out.shape == z.shape
    out.pow(2).mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads), "every parameter takes part"
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # the output depends on t (the time embedding reaches the output)
    with torch.no_grad():
        assert not torch.allclose(net(z, torch.zeros(3)), net(z, torch.ones(3)))


@pytest.mark.parametrize("key", list(SMALL))
def test_class_conditional_with_null_label(registry, key):
    torch.manual_seed(0)
    net = registry.build("network", {**SMALL[key], "conditional": True}, shape=(1, 28, 28), num_classes=10)
    net.eval()
    z, t = torch.randn(2, 1, 28, 28), torch.full((2,), 0.3)
    with torch.no_grad():
        a = net(z, t, torch.tensor([1, 1]))
        b = net(z, t, torch.tensor([2, 2]))
        null = net(z, t, None)
        explicit_null = net(z, t, torch.full((2,), net.null_label))
    assert not torch.allclose(a, b)
    assert torch.equal(null, explicit_null)
    with pytest.raises(ColdlabError, match="class labels"):
        registry.build("network", {**SMALL[key], "conditional": True}, shape=(1, 28, 28), num_classes=0)


def test_cnn_with_the_reports_settings_has_the_hand_derived_parameter_count(registry):
    net = registry.build("network", "cnn", shape=(1, 28, 28))
    H = W = 28
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    layernorm = lambda c: 2 * c * H * W  # noqa: E731  (weight and bias over C x H x W)
    linear = lambda i, o: i * o + o  # noqa: E731
    blocks = (conv(1, 16, 7) + layernorm(16) + conv(16, 32, 7) + layernorm(32)
              + conv(32, 32, 7) + layernorm(32) + conv(32, 16, 7) + layernorm(16))
    last = conv(16, 1, 3)
    time_mlp = linear(32, 128) + linear(128, 128) + linear(128, 16)  # 16 frequencies -> 32 features
    expected = blocks + last + time_mlp
    assert expected == 274_705
    assert sum(p.numel() for p in net.parameters()) == expected


def test_cnn_time_features_follow_the_reports_encoding(registry):
    net = registry.build("network", "cnn")
    feats = net.time_encoding(torch.tensor([0.0, 0.25]))
    assert feats.shape == (2, 32)
    assert torch.equal(feats[0], torch.zeros(32))  # sin(0) = 0 and cos(0) - 1 = 0
    f = net.time_encoding.frequencies
    assert f[0] == 0 and f[1] == pytest.approx(2 * torch.pi) and f[2] / f[1] == pytest.approx(1.5)


def test_ddpm_unet_at_report_003_scale_is_tens_of_millions(registry):
    net = registry.build("network", {"name": "ddpm-unet", "base_channels": 64, "channel_mults": [1, 2, 4, 4], "res_blocks": 3}, shape=(3, 32, 32))
    n = sum(p.numel() for p in net.parameters())
    assert 20e6 < n < 60e6


def test_unknown_network_parameter_lists_valid_ones(registry):
    with pytest.raises(ColdlabError) as err:
        registry.build("network", {"name": "cnn", "chanels": [16]})
    assert "did you mean 'channels'" in str(err.value) and "kernel_size" in str(err.value)
