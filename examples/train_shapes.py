"""Train examples/shapes.cnn on generated pictures and save examples/shapes.safetensors.

    python examples/train_shapes.py   # a few seconds on a CPU; deterministic

The pictures are made here (no download): 16x16 grey images of a horizontal bar, a
vertical bar, a diagonal or a ring, at random places, with noise."""

from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
CLASSES = ("horizontal", "vertical", "diagonal", "ring")


def pictures(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = np.zeros((n, 16, 16, 1), np.float32)
    ys = rng.integers(0, 4, n)
    grid = np.mgrid[0:16, 0:16]
    for img, y in zip(xs, ys):
        a, b = rng.integers(3, 13, 2)
        if y == 0:
            img[:, b - 1:b + 1, 0] = 1  # constant second axis: a bar across the first
        elif y == 1:
            img[a - 1:a + 1, :, 0] = 1
        elif y == 2:
            img[..., 0] = (np.abs(grid[0] - grid[1] - (a - b)) <= 1)
        else:
            r = np.hypot(grid[0] - a, grid[1] - b)
            img[..., 0] = (np.abs(r - rng.uniform(2.5, 4.5)) <= 0.8)
        img += rng.normal(0, 0.15, img.shape).astype(np.float32)
    return torch.tensor(xs), torch.tensor(ys)


def train(steps: int = 300, seed: int = 0):
    from cnncalc import analyse, load
    from cnncalc.backends.torch import Net
    torch.manual_seed(seed)
    net = Net(analyse(load((HERE / "shapes.cnn").read_text())))
    net.layers["classes"].act = torch.nn.Identity()  # logits for the loss; softmax is in the spec
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = pictures(2048, seed)
    for step in range(steps):
        idx = torch.randint(0, len(x), (64,))
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    tx, ty = pictures(512, seed + 1)
    with torch.no_grad():
        accuracy = (net(tx).argmax(1) == ty).float().mean().item()
    return net, accuracy


if __name__ == "__main__":
    from cnncalc.weights import save
    net, accuracy = train()
    save(net, str(HERE / "shapes.safetensors"))
    print(f"held-out accuracy {accuracy:.3f}; wrote {HERE / 'shapes.safetensors'}")
