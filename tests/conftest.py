"""Shared test setup."""

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread per test process: tiny models run ~100x slower with 2 threads
    when other processes share the 2 cores (thread spin-waits), and results do not
    depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
