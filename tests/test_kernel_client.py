"""The kernel client that polls in slices (autograder/kernel_client.py): a missed zmq wake-up costs at
most one slice, never the rest of a cell's timeout."""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest
from jupyter_client.channels import AsyncZMQSocketChannel

from autograder import kernel_client
from autograder.kernel import BoundedKernelClient
from autograder.kernel_client import POLL_SLICE, PromptKernelClient, PromptSocketChannel, notebook_client


def _channel_polling(monkeypatch, arrives_after: float | None) -> tuple[PromptSocketChannel, list]:
    """A channel whose socket poll never wakes up early (the missed wake-up): a message that arrived
    ``arrives_after`` seconds from now is seen only by a poll that starts after it."""
    polls: list[float] = []
    start = time.monotonic()

    async def poll_without_wakeup(self, timeout=None):
        polls.append(timeout)
        if arrives_after is not None and time.monotonic() - start >= arrives_after:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", poll_without_wakeup)
    return PromptSocketChannel.__new__(PromptSocketChannel), polls


def test_a_message_is_read_within_one_slice_of_its_arrival(monkeypatch):
    channel, polls = _channel_polling(monkeypatch, arrives_after=0.5)
    start = time.monotonic()
    msg = asyncio.run(channel.get_msg(timeout=120))
    assert msg == {"msg_type": "execute_reply"}
    assert time.monotonic() - start < 0.5 + 2 * POLL_SLICE
    assert max(polls) <= POLL_SLICE


def test_the_timeout_still_holds(monkeypatch):
    channel, polls = _channel_polling(monkeypatch, arrives_after=None)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.6))
    assert 0.6 <= time.monotonic() - start < 0.6 + POLL_SLICE
    assert max(polls) <= POLL_SLICE


def test_notebooks_and_the_grader_use_the_prompt_client():
    assert issubclass(BoundedKernelClient, PromptKernelClient)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    client = notebook_client(nb, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        assert isinstance(client.kc, PromptKernelClient)
        assert isinstance(client.kc.shell_channel, kernel_client.PromptSocketChannel)
        client.execute_cell(nb.cells[0], 0)
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "2"
