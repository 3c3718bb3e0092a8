"""Two speed choices of bnlib.boundaries (notebooks 09 and 10), measured against their alternative.

1. Every class's gradient by one backward pass per logit (`_class_gradients`), against one backward pass over K
   copies of the batch, each copy back-propagating its own logit. Same values.
2. A plane's grid points fed in the default layout (`predict_classes`), against channels_last batches.

    .venv/bin/python benchmarks/boundaries_speed.py
"""

import time

import torch

from bnlib import boundaries
from bnlib.models import build_model

REPEATS = 3


def over_copies(head, h, classes=10):
    n = len(h)
    copies = h.detach().repeat(classes, *[1] * (h.dim() - 1)).requires_grad_(True)
    logits = head(copies)
    picked = logits.view(classes, n, classes)[torch.arange(classes), :, torch.arange(classes)]
    (grads,) = torch.autograd.grad(picked.sum(), copies)
    return logits[:n].detach(), grads.view(classes, n, -1)


def best_of(fn):
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    torch.manual_seed(0)
    model = build_model("cnn4", "batch").eval()
    x = torch.randn(100, 1, 28, 28)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cnn4 with BN, eval mode; best of {REPEATS}")
    ours, theirs = boundaries._class_gradients(model, x)[1], over_copies(model, x)[1]
    assert torch.allclose(ours, theirs, atol=1e-5)
    a = best_of(lambda: boundaries._class_gradients(model, x))
    b = best_of(lambda: over_copies(model, x))
    print(f"all 10 class gradients of 100 images: 10 backward passes {a:.3f} s, one pass over 10 copies {b:.3f} s "
          f"-> {b / a:.2f}x")

    a_img, b_img, c_img = torch.randn(3, 1, 28, 28)
    plane = boundaries.plane_grid(a_img, b_img, c_img, 36)

    def channels_last():
        coords = plane.coords()
        with torch.no_grad():
            for start in range(0, len(coords), 500):
                batch = plane.points(coords[start:start + 500], torch.float32).view(-1, 1, 28, 28)
                model(batch.contiguous(memory_format=torch.channels_last)).argmax(1)

    for layout in (torch.contiguous_format, torch.channels_last):
        model = model.to(memory_format=layout)
        c = best_of(lambda: boundaries.predict_classes(model, plane, (1, 28, 28)))
        d = best_of(channels_last)
        print(f"one 36 x 36 plane, model in {layout}: default-layout batches {c:.3f} s, channels_last batches "
              f"{d:.3f} s -> {d / c:.2f}x")


if __name__ == "__main__":
    main()
