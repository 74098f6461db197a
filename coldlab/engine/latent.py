"""Latent diffusion: the autoencoder file a run writes or a user brings, and the codec a latent
diffusion run encodes its data and decodes its samples with.

The file (``autoencoder.pt``, written by an autoencoder run at its end) holds the autoencoder's
resolved spec (name and parameters), the image shape, the dataset it was trained on and its weights,
the estimated ``scale_factor`` among them. To bring an autoencoder trained elsewhere, write the same
dictionary with :func:`save_autoencoder` from a model built by the ``autoencoder`` registry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from coldlab.engine.session import current_session
from coldlab.errors import ColdlabError
from coldlab.files import load_tensors, save_atomic

AE_FILE = "autoencoder.pt"
FORMAT = "coldlab-autoencoder-1"


def save_autoencoder(path: Path, model: Any, spec: dict[str, Any], dataset: dict[str, Any]) -> Path:
    """Write ``model`` (an :class:`coldlab.Autoencoder` built from ``spec``) as an autoencoder file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_atomic({"format": FORMAT, "autoencoder": spec, "dataset": dataset, "shape": list(model.shape), "state": state}, Path(path))


def autoencoder_path(latent: dict[str, Any], home: Path | None) -> Path:
    """Where a latent run's autoencoder file is: the given checkpoint, or the file its autoencoder run wrote."""
    if "checkpoint" in latent:
        return Path(latent["checkpoint"])
    if "run_id" not in latent:
        raise ColdlabError(
            f"the autoencoder run {latent.get('run')!r} was never queued in this store",
            hint="queue both with `coldlab run FILE` (it queues the autoencoder run first)",
            where=("latent", "run"),
        )
    if home is None:
        raise ColdlabError(
            "a latent run that names an autoencoder run needs the HOME that holds that run", hint="pass home= to the trainer", where=("latent", "run")
        )
    from coldlab.home import as_home

    return as_home(home).run_dir(int(latent["run_id"])) / AE_FILE


def load_autoencoder(path: Path, registry: Any, device: torch.device | str = "cpu") -> Any:
    """The frozen autoencoder stored at ``path`` (eval mode, on ``device``)."""
    path = Path(path)
    if not path.is_file():
        raise ColdlabError(
            f"no autoencoder file {str(path)!r}",
            hint="the autoencoder run must finish first (it writes autoencoder.pt at its end)",
            where=("latent",),
        )
    try:
        data = load_tensors(path)
    except ColdlabError as err:
        raise err.at("latent") from None
    except Exception as err:
        raise ColdlabError(f"cannot read the autoencoder file {str(path)!r}: {err}", where=("latent",)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ColdlabError(
            f"{str(path)!r} is not a coldlab autoencoder file", hint="write it with coldlab.engine.latent.save_autoencoder", where=("latent",)
        )
    model = registry.build("autoencoder", data["autoencoder"], shape=tuple(data["shape"]))
    model.load_state_dict(data["state"])
    return model.to(device).eval().requires_grad_(False)


class LatentCodec:
    """Encodes images to scaled latents and decodes latents to images, in batches, with a frozen
    autoencoder; whole dataset splits are encoded once per data session (:mod:`coldlab.engine.session`)."""

    def __init__(self, model: Any, path: Path, batch_size: int = 256) -> None:
        self.model, self.batch_size = model, batch_size
        self.device = next(model.parameters()).device
        self.key = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.latent_shape)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.shape)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``scale_factor * mean of q(z | x)`` for images ``x`` (returned on ``x``'s device)."""
        out = [self.model.to_latent(x[i : i + self.batch_size].to(self.device)) for i in range(0, x.shape[0], self.batch_size)]
        return torch.cat(out).to(x.device)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = [self.model.from_latent(z[i : i + self.batch_size].to(self.device)) for i in range(0, z.shape[0], self.batch_size)]
        return torch.cat(out).to(z.device)

    def encoded(self, load: Any, spec: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A dataset split (loaded by ``load(spec, split)``) as latents, with its labels."""

        def encode() -> tuple[torch.Tensor, torch.Tensor]:
            images, labels = load(spec, split)
            if tuple(images.shape[1:]) != self.image_shape:
                raise ColdlabError(
                    f"the autoencoder takes images of shape {self.image_shape}, the dataset has {tuple(images.shape[1:])}",
                    hint="use an autoencoder trained on this dataset",
                    where=("latent",),
                )
            return self.encode(images).cpu(), labels

        return current_session().encoded((self.key, repr(spec), split), encode)
