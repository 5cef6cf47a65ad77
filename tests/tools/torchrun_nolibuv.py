# torchrun from Debian's python3-torch 2.6, whose static rendezvous asks TCPStore for libuv, which
# that build lacks: the same launcher with libuv off.
import sys
import torch.distributed as dist

_TCPStore = dist.TCPStore


class TCPStore(_TCPStore):
    def __init__(self, *args, **kwargs):
        kwargs["use_libuv"] = False
        super().__init__(*args, **kwargs)


dist.TCPStore = TCPStore
from torch.distributed.run import main  # noqa: E402

sys.exit(main())
