"""A Jupyter kernel started inside the sandbox, driven cell by cell through nbclient.

The kernel talks to the grader over Unix sockets (ZeroMQ's ipc transport) in a
runtime folder that both sides see at the same path, so the sandbox needs no
network at all. Interrupts are sent as messages (a signal to the bubblewrap
process would end the sandbox). :class:`KernelRun` executes cells with a time
limit each, interrupts a cell that runs over, and when the kernel cannot be
interrupted or dies, kills the whole sandbox and starts a fresh one.
"""
from __future__ import annotations

import copy
import os
import subprocess
import time
from dataclasses import dataclass
from queue import Empty
from typing import Any

import nbformat
import zmq
from jupyter_client.connect import channel_socket_types
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from nbclient.util import run_sync
from traitlets import Any as AnyTrait

from .kernel_client import PromptKernelClient
from .sandbox import SandboxSpec


#: the largest message the grader accepts from a kernel, per channel: a bigger one drops the
#: connection instead of filling the grader's memory (a probe's reply, an output)
MAX_MESSAGE_BYTES = {"shell": 64 * 2**20, "iopub": 16 * 2**20}
#: output messages waiting to be read in the grader, at most (so at most 8 x 16 MiB): a kernel that
#: sends faster than the grader reads keeps the rest in its own queue, in the sandbox's memory,
#: instead of 1000 messages (zmq's default) queueing in the grader's
IOPUB_QUEUE_MESSAGES = 8


class BoundedKernelClient(PromptKernelClient):
    """A kernel client that will not read a message larger than MAX_MESSAGE_BYTES.

    zmq drops the connection that sent it; the request then times out, and the
    kernel, which can no longer be reached, is restarted."""

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> Any:
        url = self._make_url(channel)
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES.get(channel, 2**20))
        if channel == "iopub":
            sock.rcvhwm = IOPUB_QUEUE_MESSAGES
        # after a dropped connection a send would wait forever: give up instead (the kernel is restarted)
        sock.sndtimeo = 3_000
        if identity:
            sock.identity = identity
        sock.connect(url)
        return sock


class SandboxedKernelManager(AsyncKernelManager):
    """A python3 kernel whose command line is wrapped in the sandbox's."""

    sandbox = AnyTrait(None)

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (sandbox)",
            language="python",
            interrupt_mode="message",
        )

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return self.sandbox.command_prefix() + super().format_kernel_cmd(extra_arguments)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        spec: SandboxSpec = self.sandbox
        if spec.uid is not None and os.path.exists(self.connection_file):
            os.chmod(self.connection_file, 0o644)  # the kernel reads it; it stays ours
        kw["env"] = spec.environment()
        kw["cwd"] = str(spec.scratch)
        # the kernel process's own stdout/stderr (not cell output) go nowhere: not to our terminal,
        # not to a file the kernel could grow on the host's disk
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        await super()._async_launch_kernel(kernel_cmd, **kw)


class KernelStartError(RuntimeError):
    """A sandboxed kernel did not come up."""


def kill_leftovers(spec: SandboxSpec, wait: float = 10.0) -> None:
    """Make sure no process of the sandbox's uid survives (the pid namespace should have ended them all)."""
    uid = spec.uid
    if uid is None:
        return
    deadline = time.monotonic() + wait
    while True:
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.05)


@dataclass
class CellRun:
    """How one cell went: ``status`` is ok, error, timeout or died; ``outputs`` as nbformat outputs."""

    status: str
    outputs: list
    error: str = ""  # the exception's class name when status is error


class KernelRun:
    """One sandboxed kernel executing cells; restartable after a timeout it cannot interrupt or a death."""

    def __init__(self, spec: SandboxSpec, *, startup_timeout: float = 60, max_output_bytes: int = 2_000_000):
        self.spec = spec
        self.startup_timeout = startup_timeout
        self.max_output_bytes = max_output_bytes
        self.nb = nbformat.v4.new_notebook()
        self.client: NotebookClient | None = None
        self._kernel_number = 0
        self._restarted = False
        self.output_budget = [NOTEBOOK_OUTPUT_BYTES]  # bytes of output the notebook may still keep, across restarts

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a kernel in a fresh sandbox; raises KernelStartError when it does not come up."""
        try:
            self._start()
        except Exception as exc:
            self.stop()
            raise KernelStartError(f"the kernel did not start: {exc}") from exc

    def _start(self) -> None:
        self._kernel_number += 1
        folder = self.spec.kernel_folder(self._kernel_number)
        km = SandboxedKernelManager(
            sandbox=self.spec, transport="ipc", ip=str(folder / "kernel"), connection_file=str(folder / "kernel.json"),
            client_factory=BoundedKernelClient,
        )
        self.client = _LimitedClient(
            self.nb, km=km, allow_errors=True, startup_timeout=self.startup_timeout, coalesce_streams=False,
            iopub_timeout=2, raise_on_iopub_timeout=True, max_output_bytes=self.max_output_bytes,
            notebook_budget=self.output_budget, resources={"metadata": {"path": str(self.spec.scratch)}},
        )
        self.client.start_new_kernel()
        self.client.start_new_kernel_client()
        # A large reply makes pyzmq start its garbage-collector thread now, while the sandbox can
        # still create threads: after a fork bomb it could not, and large replies would hang.
        status, text = self._request("'.' * 200_000", self.startup_timeout)
        if status != "ok":
            raise RuntimeError(f"the kernel did not answer a first request ({status} {text})")
        self.spec.seal(folder)  # its sockets exist: no more files there

    def stop(self) -> None:
        """Kill the kernel's sandbox (every process in it) and close the channels."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.kc is not None:
                client.kc.stop_channels()
        finally:
            if client.km is not None:
                try:
                    run_sync(client.km.shutdown_kernel)(now=True)
                except Exception:
                    pass
                run_sync(client.km.cleanup_resources)()
            kill_leftovers(self.spec)

    def restart(self) -> None:
        self.stop()
        self.start()
        self._restarted = True

    def restarted_since_last_check(self) -> bool:
        """Whether the kernel was restarted (its state lost) since the last call."""
        restarted, self._restarted = self._restarted, False
        return restarted

    def __enter__(self) -> "KernelRun":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- running cells ---------------------------------------------------------------------------

    def run(self, source: str, timeout: float) -> CellRun:
        """Execute ``source`` as one cell; never raises for what the cell does."""
        assert self.client is not None, "start() the kernel first"
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells = [cell]
        self.client.timeout = max(1, int(round(timeout)))
        self.client.reset_output_budget()
        try:
            self.client.execute_cell(cell, 0, store_history=True)
        except CellTimeoutError as exc:
            outputs = copy.deepcopy(cell.outputs)
            if "IOPub" in str(exc):
                # the cell finished, but its output stopped coming: an output message too large
                # (see BoundedKernelClient) cut the output channel. Connect it again.
                self._reconnect()
                outputs.append(nbformat.v4.new_output(
                    "stream", name="stderr", text="\n[output cut by the grader: a single output was too large]\n"))
                return CellRun("ok", outputs)
            if not self._interrupt():
                self.restart()
            return CellRun("timeout", outputs)
        except Exception:  # DeadKernelError, or a kernel whose messages nbclient cannot follow
            outputs = copy.deepcopy(cell.outputs)
            self.restart()
            return CellRun("died", outputs)
        outputs = copy.deepcopy(cell.outputs)
        error = next((o.get("ename", "") for o in outputs if o.get("output_type") == "error"), None)
        return CellRun("ok" if error is None else "error", outputs, str(error or ""))

    def evaluate(self, expression: str, timeout: float) -> tuple[str, str]:
        """Evaluate ``expression`` in the kernel's namespace as a user expression (no cell, no hooks).

        Returns (status, text): status is ok (text is the value's text/plain), error
        (text is "ename: evalue"), timeout or died. After a timeout that cannot be
        interrupted, or a death, the kernel is restarted (its state is lost).
        """
        status, text = self._request(expression, timeout)
        if status == "timeout" and not self._interrupt():
            self.restart()
        elif status == "died":
            self.restart()
        return status, text

    def _request(self, expression: str, timeout: float) -> tuple[str, str]:
        client = self.client
        assert client is not None, "start() the kernel first"
        get_msg = run_sync(client.kc.shell_channel.get_msg)
        try:
            msg_id = client.kc.execute("", silent=True, store_history=False,
                                       user_expressions={"result": expression}, stop_on_error=False)
        except zmq.ZMQError:  # the connection is gone (see BoundedKernelClient)
            return "died", ""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", ""
            self._discard_output()
            try:
                reply = get_msg(timeout=min(remaining, 0.2))
            except Empty:
                if not run_sync(client.km.is_alive)():
                    return "died", ""
                continue
            except Exception:
                return "died", ""
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            result = reply.get("content", {}).get("user_expressions", {}).get("result")
            if not isinstance(result, dict):
                return "error", "no result came back"
            if result.get("status") != "ok":
                return "error", f"{result.get('ename', '')}: {result.get('evalue', '')}"
            text = result.get("data", {}).get("text/plain")
            return ("ok", text) if isinstance(text, str) else ("error", "the result had no text")

    def _discard_output(self) -> None:
        """Drop what the kernel printed while a probe runs: nobody reads it, and kept waiting in the
        queue it would fill the grader's memory."""
        client = self.client
        assert client is not None
        get_iopub = run_sync(client.kc.iopub_channel.get_msg)
        for _ in range(1000):
            try:
                get_iopub(timeout=0)
            except Exception:  # Empty, or a channel that is gone (the request then fails on its own)
                return

    def _reconnect(self) -> None:
        """A new output channel to the same kernel (its state is kept)."""
        client = self.client
        assert client is not None
        try:
            client.kc.iopub_channel.close()
            client.kc._iopub_channel = None  # the property makes a new channel, with a new socket
            client.kc.iopub_channel.start()
        except Exception:
            self.restart()

    def _interrupt(self, grace: float = 5) -> bool:
        """Interrupt the running cell; True when the kernel answers again within ``grace`` seconds."""
        client = self.client
        assert client is not None
        get_msg = run_sync(client.kc.shell_channel.get_msg)
        try:
            run_sync(client.km.interrupt_kernel)()
        except Exception:
            return False
        deadline = time.monotonic() + grace
        # drain the interrupted cell's reply, then check that a trivial request is answered
        while time.monotonic() < deadline:
            try:
                get_msg(timeout=max(0.1, deadline - time.monotonic()))
                break
            except Exception:
                if not run_sync(client.km.is_alive)():
                    return False
        try:
            msg_id = client.kc.kernel_info()
            while time.monotonic() < deadline + grace:
                reply = get_msg(timeout=grace)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return True
        except Exception:
            return False
        return False


#: outputs kept of one notebook, all cells together (each cell keeps at most ``max_output_bytes``)
NOTEBOOK_OUTPUT_BYTES = 10_000_000


class _LimitedClient(NotebookClient):
    """An nbclient client that keeps at most ``max_output_bytes`` of a cell's output, at most
    NOTEBOOK_OUTPUT_BYTES of the whole notebook's, and nothing of the widgets' state."""

    def __init__(self, *args: Any, max_output_bytes: int, notebook_budget: list, **kwargs: Any):
        super().__init__(*args, store_widget_state=False, **kwargs)
        self._max_output_bytes = max_output_bytes
        self._sizes: dict[int, int] = {}
        self._budget = notebook_budget  # [bytes left], shared by the clients of one notebook's kernels

    def reset_output_budget(self) -> None:
        self._sizes = {}

    def handle_comm_msg(self, outs: list, msg: dict, cell_index: int) -> None:
        """Keep nothing of comm messages: nbclient would keep every widget's state (and buffers) for
        the kernel's life, outside every output limit; the feedback page shows no widgets anyway."""

    def _update_display_id(self, display_id: str, msg: dict) -> None:
        """Ignore updates of earlier outputs: what a cell showed stays as it was when the cell ended."""

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        size = self._sizes.get(id(outs), 0)
        if size > self._max_output_bytes or self._budget[0] < 0:
            return None
        added = len(str(msg.get("content", "")))
        size += added
        self._budget[0] -= added
        self._sizes[id(outs)] = size
        if self._budget[0] < 0:
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[output truncated by the grader: the notebook's outputs passed {NOTEBOOK_OUTPUT_BYTES:,} "
                     "bytes; later outputs are not kept]\n"))
            return None
        if size > self._max_output_bytes:
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[output truncated by the grader: more than {self._max_output_bytes:,} bytes]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)
