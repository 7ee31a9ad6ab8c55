"""A Jupyter kernel client whose waits end when the message arrives, not at their timeout.

jupyter_client waits for a message with one ``zmq.asyncio`` poll as long as the whole timeout.
That poll can miss the wake-up of a message that has arrived (jupyter/nbclient#312, seen here
after a widget cell: about 1 run in 10, the next cell's reply was read only when nbclient's
120 s cell timeout was nearly over). Here every wait is a series of short polls: a missed
wake-up costs at most one slice.

:func:`notebook_client` is nbclient's ``NotebookClient`` with this kernel client: the one the
tests and benchmarks use to run a notebook. The hardened grader's client builds on the same class.
"""
from __future__ import annotations

import time
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from nbclient import NotebookClient
from queue import Empty
from traitlets import Type
from traitlets.config import Config

#: the longest single poll, in seconds
POLL_SLICE = 0.25


class PromptSocketChannel(AsyncZMQSocketChannel):
    """A channel whose ``get_msg(timeout)`` polls in slices of at most POLL_SLICE seconds."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, min(POLL_SLICE, deadline - time.monotonic()))
            try:
                return await super().get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class PromptKernelClient(AsyncKernelClient):
    """An asynchronous kernel client whose channels are PromptSocketChannels."""

    shell_channel_class = Type(PromptSocketChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(PromptSocketChannel)  # type: ignore[assignment]
    stdin_channel_class = Type(PromptSocketChannel)  # type: ignore[assignment]
    control_channel_class = Type(PromptSocketChannel)  # type: ignore[assignment]


def notebook_client(nb: Any, **kwargs: Any) -> NotebookClient:
    """nbclient's NotebookClient for ``nb`` (same arguments), talking to its kernel through PromptKernelClient."""
    config = Config({"KernelManager": {"client_class": f"{__name__}.PromptKernelClient"}})
    return NotebookClient(nb, config=config, **kwargs)
