"""Built-in metric plugins (SPEC.md section 7); see each module for what a value means."""

from coldlab import hookimpl
from coldlab.default_plugins.metrics.classes import ClassHistogram
from coldlab.default_plugins.metrics.cost import SamplingCost
from coldlab.default_plugins.metrics.frechet import ClassifierFID, InceptionFID
from coldlab.default_plugins.metrics.inception import InceptionScoreMetric
from coldlab.default_plugins.metrics.normality import KSNormality
from coldlab.default_plugins.metrics.reconstruction import PSNR, RMSE, SSIM, TestLoss
from coldlab.hookspecs import Register


@hookimpl
def register_metrics(register: Register) -> None:
    register("fid", InceptionFID)
    register("classifier-fid", ClassifierFID)
    register("inception-score", InceptionScoreMetric)
    register("test-loss", TestLoss)
    register("rmse", RMSE)
    register("ssim", SSIM)
    register("psnr", PSNR)
    register("ks-normality", KSNormality)
    register("class-histogram", ClassHistogram)
    register("sampling-cost", SamplingCost)
