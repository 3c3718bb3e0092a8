"""One split of a dataset as in-memory tensors: what every loader returns and every measure reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageData:
    """One split of a dataset, resident in memory."""

    name: str
    split: str
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    title: str  # how figures should name the data

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: torch.Tensor) -> "ImageData":
        return ImageData(self.name, self.split, self.images[indices], self.labels[indices],
                         self.classes, self.mean, self.std, self.title)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (on any device) to normalised float32."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std
