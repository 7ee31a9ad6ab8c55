"""What a forward pass saves for the backward pass, counted with PyTorch's saved-tensor hooks.

    >>> summary = saved_tensor_summary(model, X)          # X: (N, D)
    >>> summary.count, summary.total_bytes, summary.unique_bytes

During a forward pass with gradients enabled, every operation saves the tensors its
derivative will need (a Linear layer its input, a ReLU its output, ...). PyTorch calls
a hook for each saved tensor (``torch.autograd.graph.saved_tensors_hooks``); this module
counts them. The same memory can be saved twice: ReLU saves its output, and the next
Linear saves that same tensor as its input. So bytes are counted two ways: once per
save (``total_bytes``) and once per piece of memory, a storage (``unique_bytes``).
The model's own parameters are counted apart: the graph refers to them, but they are
in memory anyway.

torch is imported inside the function: ``import course`` does not load it.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SavedTensors", "saved_tensor_summary"]


@dataclass(frozen=True)
class SavedTensors:
    """What one forward pass saved for backward, apart from the model's parameters.

    count: how many times a tensor was saved (a tensor saved by two operations counts twice).
    total_bytes: their bytes, summed over the saves.
    unique_bytes: the memory they keep alive: each storage counted once, however often saved.
    shapes: the shape of each saved tensor, in the order they were saved (len == count).
    repeats: for each save, whether its storage was already saved before (len == count).
    parameter_saves: how many times a parameter of the model was saved (not in the bytes above).
    output_requires_grad: whether the output is part of a graph (False under torch.no_grad()).
    """

    count: int
    total_bytes: int
    unique_bytes: int
    shapes: tuple[tuple[int, ...], ...]
    repeats: tuple[bool, ...]
    parameter_saves: int
    output_requires_grad: bool


def saved_tensor_summary(model, X, *, record_graph: bool = True) -> SavedTensors:
    """Run ``model(X)`` once and count the tensors the forward pass saves for backward.

    Args:
        model: a torch.nn.Module (or any function of one tensor), e.g. an MLP mapping (N, D) to (N, C).
        X: the input batch, a tensor of shape (N, D).
        record_graph: True runs with gradients enabled (training); False under torch.no_grad()
            (inference), where nothing is saved.

    Returns:
        a SavedTensors summary; the output itself is discarded, and with it the graph.
    """
    import torch  # lazily: `import course` stays light

    parameters = getattr(model, "parameters", lambda: [])()
    parameter_storages = {p.untyped_storage().data_ptr() for p in parameters}
    shapes: list[tuple[int, ...]] = []
    repeats: list[bool] = []
    storages: dict[int, int] = {}  # storage address -> its bytes
    counts = {"total": 0, "parameters": 0}

    def pack(t):
        storage = t.untyped_storage()
        address = storage.data_ptr()
        if address in parameter_storages:
            counts["parameters"] += 1
            return t
        shapes.append(tuple(t.shape))
        repeats.append(address in storages)
        storages[address] = storage.nbytes()
        counts["total"] += t.numel() * t.element_size()
        return t

    with torch.set_grad_enabled(record_graph), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(X)
    return SavedTensors(count=len(shapes), total_bytes=counts["total"], unique_bytes=sum(storages.values()),
                        shapes=tuple(shapes), repeats=tuple(repeats), parameter_saves=counts["parameters"],
                        output_requires_grad=bool(out.requires_grad))
