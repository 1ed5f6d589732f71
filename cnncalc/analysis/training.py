"""What a training step computes beyond the forward pass: the backward pass's MACs, from
the same rows. Each layer with MACs computes, in backward, the gradient of its weights
(as many MACs as its forward pass) and the gradient of its input (as many again), but the
second only when its input depends on a weight upstream: the first convolution computes
none. Checked against torch.utils.flop_counter around a real backward pass."""

from __future__ import annotations


def backward_macs(summary) -> dict:
    """Backward MACs of each row, by the row's name, for one example."""
    out = {}

    def seq(rows, grad):
        for row in rows:
            if row.branches is not None:
                joined = [seq(branch, grad) for branch in row.branches]
                out[row.name] = 0
                grad = any(joined) or (grad and any(not b for b in row.branches))
                continue
            if row.source is not None:  # 'add ID': the saved tensor's gradient joins in
                grad = grad or needs.get(row.source.name, False)
            learnt = 1 if row.learns else 0
            out[row.name] = row.macs * (learnt + (1 if grad else 0))
            grad = grad or bool(row.learns)
            needs[row.name] = grad
        return grad

    needs = {}
    seq(summary.tree, False)
    return out


def training_macs(summary) -> tuple[int, int]:
    """(forward, backward) MACs of one training step, for one example."""
    return summary.totals.macs, sum(backward_macs(summary).values())
