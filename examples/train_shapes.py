"""Train examples/shapes.cnn on generated pictures and save examples/shapes.safetensors.

    python examples/train_shapes.py   # a few seconds on a CPU; deterministic

The pictures are made here (no download): 16x16 grey images of a horizontal bar, a
vertical bar, a diagonal or a ring, at random places, with noise. Arrays are pictures,
rows first (as cnncalc reads every array): a horizontal bar is a band of rows."""

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
            img[a - 1:a + 1, :, 0] = 1  # a band of rows: a horizontal bar
        elif y == 1:
            img[:, b - 1:b + 1, 0] = 1  # a band of columns: a vertical bar
        elif y == 2:
            img[..., 0] = (np.abs(grid[0] - grid[1] - (a - b)) <= 1)
        else:
            r = np.hypot(grid[0] - a, grid[1] - b)
            img[..., 0] = (np.abs(r - rng.uniform(2.5, 4.5)) <= 0.8)
        img += rng.normal(0, 0.15, img.shape).astype(np.float32)
    return torch.tensor(xs), torch.tensor(ys)


def train(steps: int = 300, seed: int = 0):
    import cnncalc
    from cnncalc.backends.torch import Net
    torch.manual_seed(seed)
    net = Net(cnncalc.summarize(HERE / "shapes.cnn"))
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
    from cnncalc.backends.weights import save
    net, accuracy = train()
    save(net, str(HERE / "shapes.safetensors"), labels=CLASSES)
    print(f"held-out accuracy {accuracy:.3f}; wrote {HERE / 'shapes.safetensors'}")
