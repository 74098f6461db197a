"""Built-in networks (SPEC.md section 4): ``cnn``, ``convnext-unet``, ``ddpm-unet``."""

from coldlab import hookimpl
from coldlab.default_plugins.networks.cnn import CNN
from coldlab.default_plugins.networks.convnext_unet import ConvNextUNet
from coldlab.default_plugins.networks.ddpm_unet import DDPMUNet
from coldlab.hookspecs import Register


@hookimpl
def register_networks(register: Register) -> None:
    register("cnn", CNN)
    register("convnext-unet", ConvNextUNet)
    register("ddpm-unet", DDPMUNet)
