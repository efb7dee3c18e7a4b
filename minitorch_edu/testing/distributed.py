"""Run a function on N processes of this machine joined in one process group: how the tests
check data-parallel training, and a way to check your own distributed code.

    results = run_ranks(check, 2, args=(steps,))
    # check(rank, world_size, steps) ran in 2 processes, each already in a gloo process
    # group; results[r] is what rank r returned

The processes look like the workers torchrun starts: RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT are set, so code that calls
`torch.distributed.init_process_group(backend)` itself runs unchanged (`init=False`).

Everything stays on this machine and every wait is bounded:

- the rendezvous store listens on 127.0.0.1 only, on a port the operating system picks when
  the run starts (never a fixed one, so runs side by side cannot clash), and gloo connects
  the processes over the loopback interface;
- collectives and the rendezvous give up after `timeout` seconds (the process group's
  timeout), and the whole run after `timeout` seconds more; a process that dies, raises or
  hangs makes `run_ranks` raise `RanksFailed` saying what happened on each rank;
- processes are started by a fork server (one interpreter that has imported torch once; each
  rank is a fresh fork of it), each in its own process group, and whatever happens every
  one of them is killed and reaped before `run_ranks` returns.

`function` and what it returns must pickle (a function defined at module level).

`single_process_group()` is the other end of the scale: a group of one rank inside this
process (an in-memory store, nothing on the network), in which DistributedDataParallel and
ZeroRedundancyOptimizer run, averaging over one rank: enough to look at their buckets and
shards in a notebook.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Imported once by the fork server, so that each rank starts without importing them again.
PRELOAD = ["torch", "torch.distributed", "minitorch_edu"]
LOOPBACK = "127.0.0.1"


class RanksFailed(RuntimeError):
    """Some rank raised, died or did not finish in time; `failures` says what, rank by rank.

    failures   {rank: one-line description}
    details    {rank: the full traceback or how the process ended}
    results    {rank: the return value} for the ranks that finished
    """

    def __init__(self, failures: dict[int, str], details: dict[int, str], results: dict) -> None:
        self.failures = failures
        self.details = details
        self.results = results
        lines = [f"rank {rank}: {failures[rank]}" for rank in sorted(failures)]
        super().__init__(f"{len(failures)} rank(s) failed:\n" + "\n".join(lines))


@contextlib.contextmanager
def single_process_group(backend: str = "gloo") -> Iterator[None]:
    """torch.distributed's default process group, of one rank, for the `with` block."""
    import torch.distributed as dist

    if dist.is_initialized():
        raise RuntimeError("a process group is initialized already; destroy it first")
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def run_ranks(
    function: Callable[..., Any],
    world_size: int,
    args: Sequence[Any] = (),
    *,
    backend: str = "gloo",
    timeout: float = 60.0,
    init: bool = True,
    env: dict[str, str] | None = None,
    preload: Sequence[str] = (),
) -> list[Any]:
    """Call `function(rank, world_size, *args)` in `world_size` processes; their results, by rank.

    init     start the process group (`backend`, with `timeout`) before calling `function`
             and destroy it after; False leaves that to `function`
    env      extra environment variables for the processes
    preload  modules the fork server imports once for all later runs (torch.distributed.optim,
             say), instead of every rank importing them again; it starts with the first run
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    import torch.distributed as dist

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))  # port 0: the OS picks a free one, atomically
    listener.listen(world_size)
    port = listener.getsockname()[1]
    store = dist.TCPStore(
        LOOPBACK,
        port,
        None,
        True,
        timeout=datetime.timedelta(seconds=timeout),
        wait_for_workers=False,
        master_listen_fd=listener.fileno(),  # listen on this socket, bound to 127.0.0.1 only
    )
    listener.detach()  # the store owns the socket now
    context = _context([*PRELOAD, *preload, function.__module__])
    # Plain pickles both ways: multiprocessing's own would hand tensors over as shared
    # memory, tying the parent's tensors to the children's (and dying with them).
    work = pickle.dumps((function, tuple(args)))
    processes, connections = [], []
    try:
        for rank in range(world_size):
            receiver, sender = context.Pipe(duplex=False)
            settings = _rank_environment(rank, world_size, port, env)
            process = context.Process(
                target=_rank_main,
                args=(work, rank, world_size, settings, backend, timeout, init),
                kwargs={"connection": sender},
                name=f"rank-{rank}",
                daemon=True,
            )
            process.start()
            sender.close()  # the child holds the sending end now
            processes.append(process)
            connections.append(receiver)
        return _collect(processes, connections, deadline=time.monotonic() + 2 * timeout)
    finally:
        _reap(processes)
        for connection in connections:
            connection.close()
        del store


def _context(preload: list[str]) -> Any:
    """A fork-server context where the platform has one (each rank a fork of a clean,
    single-threaded interpreter that imported torch once), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    return context


def _rank_environment(
    rank: int, world_size: int, port: int, extra: dict[str, str] | None
) -> dict[str, str]:
    """What torchrun tells a worker, for a store that is already up (the agent's, here ours)."""
    settings = {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world_size),
        "GROUP_RANK": "0",
        "MASTER_ADDR": LOOPBACK,
        "MASTER_PORT": str(port),
        "TORCHELASTIC_USE_AGENT_STORE": "True",  # connect to the store; rank 0 starts none
        "TORCHELASTIC_RESTART_COUNT": "0",
        "OMP_NUM_THREADS": "1",
    }
    if "GLOO_SOCKET_IFNAME" not in os.environ:
        from minitorch_edu.launch import loopback_interface

        settings["GLOO_SOCKET_IFNAME"] = loopback_interface()
    settings.update(extra or {})
    return settings


def _rank_main(
    work: bytes,
    rank: int,
    world_size: int,
    settings: dict[str, str],
    backend: str,
    timeout: float,
    init: bool,
    connection: Any,
) -> None:
    """One rank: set the environment, join the group, run, send back ("ok", result) or
    ("error", summary, traceback)."""
    os.setpgid(0, 0)  # its own process group: killing it reaches anything it started
    os.environ.update(settings)
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        function, args = pickle.loads(work)
        if init:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
            dist.barrier()  # every rank connected before any starts
        try:
            message = ("ok", function(rank, world_size, *args))
            if init:
                try:
                    dist.barrier()  # none leaves while another may still talk to it
                except RuntimeError:
                    pass  # a rank is gone; it reports its own failure, this one finished
        finally:
            if init and dist.is_initialized():
                dist.destroy_process_group()
    except BaseException as error:  # everything goes back to the parent
        lines = str(error).strip().splitlines()
        summary = f"{type(error).__name__}: {lines[0] if lines else ''}"
        message = ("error", summary, traceback.format_exc())
    try:
        data = pickle.dumps(message)
    except Exception as error:  # an unpicklable result
        data = pickle.dumps(("error", f"the result cannot be sent back: {error}", repr(error)))
    connection.send_bytes(data)
    connection.close()


def _collect(processes: list, connections: list, deadline: float) -> list[Any]:
    """Wait for every rank's message (or its death) until `deadline`."""
    results: dict[int, Any] = {}
    failures: dict[int, str] = {}
    details: dict[int, str] = {}
    waiting = dict(enumerate(connections))
    first_failure: float | None = None
    while waiting:
        now = time.monotonic()
        # After a failure the others get a few seconds to report how it reached them.
        limit = deadline if first_failure is None else min(deadline, first_failure + 10.0)
        if now >= limit:
            break
        ready = multiprocessing.connection.wait(list(waiting.values()), timeout=limit - now)
        for rank, connection in list(waiting.items()):
            if connection not in ready:
                continue
            del waiting[rank]
            try:
                message = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                processes[rank].join(timeout=5)
                code = processes[rank].exitcode
                failures[rank] = f"the process ended (exit code {code}) without a result"
                details[rank] = failures[rank]
            else:
                if message[0] == "ok":
                    results[rank] = message[1]
                    continue
                failures[rank], details[rank] = message[1], message[2]
            if first_failure is None:
                first_failure = time.monotonic()
    for rank in waiting:
        _kill(processes[rank])
        failures[rank] = "did not finish in time (killed)"
        details[rank] = failures[rank]
    if failures:
        raise RanksFailed(failures, details, results)
    return [results[rank] for rank in range(len(processes))]


def _reap(processes: list, grace: float = 5.0) -> None:
    """Give the processes `grace` seconds to end, then kill each one's process group, and
    wait for every process."""
    end = time.monotonic() + grace
    for process in processes:
        process.join(timeout=max(0.0, end - time.monotonic()))
        if process.exitcode is None:
            _kill(process)
    for process in processes:
        process.join(timeout=10)


def _kill(process: Any) -> None:
    """SIGKILL the process's group (it leads one: whatever it started goes too)."""
    if process.pid is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()  # it had not made its own group yet
