"""Built-in networks (SPEC.md section 4): ``cnn``, ``convnext-unet``, ``ddpm-unet``."""

from coldlab import hookimpl
from coldlab.default_plugins.networks.cnn import CNN
from coldlab.default_plugins.networks.convnext_unet import ConvNextUNet
from coldlab.default_plugins.networks.ddpm_unet import DDPMUNet


@hookimpl
def register_networks(register):
    register("cnn", CNN)
    register("convnext-unet", ConvNextUNet)
    register("ddpm-unet", DDPMUNet)
