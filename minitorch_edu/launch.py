"""The launcher side of `minitorch-edu train --nproc N`: start N ranks through torchrun.

The ranks are N copies of `python -m minitorch_edu train ...` started by torch's launcher
(`torch.distributed.run`, the code behind `torchrun`), with a c10d rendezvous on 127.0.0.1
(on a free port unless --master-port says which). What each rank does is in
minitorch_edu/distributed_train.py. Nothing here imports torch at the top, so that the
command's usage errors about --nproc answer at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minitorch_edu.cli import TrainConfig

LOOPBACK = "127.0.0.1"
# What torchrun tells each worker; all of them set means "this process is a rank".
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# Threads torch uses in each rank (minitorch_edu.train.CPU_THREADS).
RANK_THREADS = 1


class LaunchError(RuntimeError):
    """A rank of `--nproc N` failed (its own output says why), or torchrun could not start."""


def torchrun_world() -> tuple[int, int, int, int] | None:
    """(rank, world size, local rank, local world size) when torchrun started this process."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return None
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    return (
        int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]),
        int(os.environ["LOCAL_RANK"]),
        local_world_size,
    )


def loopback_interface() -> str:
    """The name of this machine's loopback network interface ("lo" on Linux, "lo0" on macOS)."""
    names = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    return names[0] if names else "lo"


def port_in_use(port: int) -> bool:
    """Whether something listens on `port` already (the rendezvous store will take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------------- the launcher
def launch(config: TrainConfig, argv: list[str], master_port: int | None) -> int:
    """Start `minitorch-edu train ARGV` as config.nproc ranks through torch's launcher and wait
    for them; the exit code is 0 when every rank succeeded."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    port = 0 if master_port is None else master_port  # 0: the store takes a free port
    launcher_arguments = [
        "--nnodes=1",
        f"--nproc-per-node={config.nproc}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={LOOPBACK}:{port}",
        f"--rdzv-id={uuid.uuid4()}",
        "--max-restarts=0",
        "--monitor-interval=0.1",
        "-m",
        "minitorch_edu",
        *argv,
    ]
    os.environ.setdefault("OMP_NUM_THREADS", str(RANK_THREADS))
    if config.device == "cpu":
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
    try:
        run(parse_args(launcher_arguments))
    except ChildFailedError as failed:
        ranks = ", ".join(
            f"rank {rank} (exit code {failure.exitcode})"
            for rank, failure in sorted(failed.failures.items())
        )
        raise LaunchError(f"{ranks} failed; the ranks' own messages are above") from None
    except SignalException:  # Ctrl-C (or a kill): torchrun has stopped the ranks
        raise KeyboardInterrupt from None
    return 0
