"""What a real training step allocates, on CPU: the allocator's events of one step
(forward, backward, the optimizer's step, zero_grad), recorded by torch.profiler and
replayed in order. A step runs once before the one recorded, so the optimizer's state
exists, as in training. The tensors' bytes are counted, not a kernel's scratch space
(oneDNN's reordered copies of a convolution's weights and maps, freed before the outermost
ATen operator that made them returns: cuDNN's workspace is the same on a GPU);
``workspace=True`` counts it too."""

from __future__ import annotations


def saved_bytes(net, x):
    """Bytes autograd saves in a forward pass of ``net`` on ``x``: every tensor the
    saved-tensor hook sees, one count per storage, the parameters left out (batchnorm's
    running statistics, which it saves, are in); and the output."""
    import torch
    known = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in known:
            seen[storage.data_ptr()] = storage.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = net(x)
    return sum(seen.values()), y


def _outermost(event):
    """The outermost ATen operator an allocation happens in (one called from Python, or by
    an autograd node: a gradient it returns outlives it, even when the engine then adds it
    into another and frees it before the node's evaluation ends)."""
    top, p = None, event.parent
    while p is not None:
        if p.name.startswith("aten::"):
            top = p
        p = p.parent
    return top


def step_peak(step, workspace: bool = False) -> int:
    """Bytes allocated at the peak of ``step()`` beyond what was allocated before it."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        e = stack.pop()
        if e.tag == _EventType.Allocation:
            events.append(e)
        stack.extend(e.children)
    events.sort(key=lambda e: e.start_time_ns)
    scratch, open_ = set(), {}
    for e in events:
        f = e.extra_fields
        if f.alloc_size > 0:
            open_[f.ptr] = e
        elif f.ptr in open_:
            made = open_.pop(f.ptr)
            top = _outermost(made)
            if top is not None and e.start_time_ns <= top.end_time_ns:
                scratch.update((id(made), id(e)))
    live = peak = 0
    for e in events:
        if workspace or id(e) not in scratch:
            live += e.extra_fields.alloc_size
            peak = max(peak, live)
    return peak


def training_step(net, x, optimizer: str = "adam", foreach: bool = False, autocast=None):
    """One step of training ``net`` on ``x`` (a loss summing its outputs: its gradient a new
    tensor of each output's size, as cross-entropy's or a squared error's), as a function,
    and its optimizer; ``autocast``: the forward pass under autocast to this dtype (mixed
    precision: parameters, gradients and the optimizer's state stay float32)."""
    import contextlib

    import torch
    params = [p for p in net.parameters() if p.requires_grad]
    make = {"sgd": lambda: torch.optim.SGD(params, lr=0.01, foreach=foreach),
            "momentum": lambda: torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=foreach),
            "adam": lambda: torch.optim.Adam(params, foreach=foreach),
            "adamw": lambda: torch.optim.AdamW(params, foreach=foreach)}[optimizer]
    opt = make()

    def step():
        with (torch.autocast(x.device.type, dtype=autocast) if autocast is not None
              else contextlib.nullcontext()):
            y = net(x)
            # as a real loss, one whose gradient is a new tensor of each output's size
            loss = sum((t * 1.0).sum() for t in (y if isinstance(y, (tuple, list)) else (y,)))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, opt


def held_bytes(net, x, opt) -> int:
    """Bytes held before a step: parameters, buffers, the optimizer's state, the batch."""
    import torch
    tensors = [*net.parameters(), *net.buffers(), x]
    tensors += [t for state in opt.state.values() for t in state.values()
                if isinstance(t, torch.Tensor)]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in tensors}.values())


def measured_step(summary, batch: int, optimizer: str = "adam", foreach: bool = False,
                  workspace: bool = False, dtype: str = "float32", amp: bool = False,
                  checkpoint=()) -> int:
    """Bytes of a real training step of the spec's module at its peak: held before it
    (parameters, buffers, the optimizer's state, the batch) and allocated during it. The
    module runs from its channels-first body: cnncalc's Net takes channels-last pictures and
    makes one channels-first copy of them, which a hand-written model does not."""
    import torch

    from .torch import to_torch

    class Body(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            saved = {}
            y = self.net.body(x, saved)
            return (y, *(saved[n] for n in self.net.outputs[:-1] if n in saved))

    torch.manual_seed(0)
    kind = torch.float32 if amp else getattr(torch, dtype)
    net = Body(to_torch(summary, checkpoint=checkpoint)).train().to(kind)
    shape = summary.network.input.shape
    x = torch.randn(batch, shape[-1], *shape[:-1], dtype=kind)
    step, opt = training_step(net, x, optimizer, foreach, getattr(torch, dtype) if amp else None)
    peak = step_peak(step, workspace)
    return held_bytes(net, x, opt) + peak
