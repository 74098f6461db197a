"""coldlab-pixelate: the pixelate and Gaussian-mask degradations of cold diffusion.

A plugin module like any other: coldlab finds it through the ``coldlab`` entry point group
(see pyproject.toml) and calls its hooks. It imports only coldlab's public API.
"""

from coldlab import hookimpl

from coldlab_pixelate.mask import GaussianMaskDegradation
from coldlab_pixelate.pixelate import PixelateDegradation

__version__ = "0.1.0"
__all__ = ["GaussianMaskDegradation", "PixelateDegradation"]


@hookimpl
def register_degradations(register):
    register("pixelate", PixelateDegradation)
    register("gaussian-mask", GaussianMaskDegradation)
