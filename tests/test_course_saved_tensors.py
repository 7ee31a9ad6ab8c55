"""course.saved_tensors: what a forward pass saves for backward, counted per save and per storage."""
from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from course.saved_tensors import SavedTensors, saved_tensor_summary  # noqa: E402

N, D, H, C = 5, 4, 3, 2
FLOAT32 = 4  # bytes


def _mlp(dtype=torch.float32) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype))
    return model


def test_relu_output_saved_twice_is_counted_once_in_unique_bytes():
    """Linear(D, H) saves its input X: (N, D); ReLU saves its output: (N, H); the second Linear saves
    that same output as its input, and its weight (a parameter, counted apart)."""
    X = torch.randn(N, D)
    summary = saved_tensor_summary(_mlp(), X)
    assert isinstance(summary, SavedTensors)
    assert summary.count == 3
    assert summary.shapes == ((N, D), (N, H), (N, H))
    assert summary.repeats == (False, False, True)
    assert summary.total_bytes == (N * D + 2 * N * H) * FLOAT32 == 200
    assert summary.unique_bytes == (N * D + N * H) * FLOAT32 == 140
    assert summary.unique_bytes < summary.total_bytes
    assert summary.parameter_saves == 1  # the second Linear's weight, needed for dX of the ReLU output
    assert summary.output_requires_grad


def test_bytes_follow_the_dtype():
    summary = saved_tensor_summary(_mlp(torch.float64), torch.randn(N, D, dtype=torch.float64))
    assert (summary.total_bytes, summary.unique_bytes) == ((N * D + 2 * N * H) * 8, (N * D + N * H) * 8)


def test_inference_saves_nothing():
    summary = saved_tensor_summary(_mlp(), torch.randn(N, D), record_graph=False)
    assert (summary.count, summary.total_bytes, summary.unique_bytes, summary.parameter_saves) == (0, 0, 0, 0)
    assert summary.shapes == () and not summary.output_requires_grad


def test_grad_mode_is_restored_and_the_model_untouched():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        saved_tensor_summary(model, torch.randn(N, D))
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_a_saved_view_keeps_its_whole_storage_alive():
    """sin saves its input; here that input is a view of 2 rows of a (10, 4) tensor, so the memory
    kept alive is the whole (10, 4) storage, while the save itself is (2, 4)."""
    big = torch.randn(10, 4, requires_grad=True)
    summary = saved_tensor_summary(lambda x: torch.sin(x[:2]), big)
    assert summary.shapes == ((2, 4),)
    assert summary.total_bytes == 2 * 4 * FLOAT32 and summary.unique_bytes == 10 * 4 * FLOAT32


def test_importing_course_saved_tensors_does_not_load_torch():
    code = "import sys, course, course.saved_tensors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
