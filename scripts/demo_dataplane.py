"""The demo's data plane: Zentinel admin emulators on the example pods' loopback IPs, with traffic.

Runs in the background under `scripts/demo`. The error share of the traffic is read from a control
file each second, so `scripts/demo errors 20` turns a healthy proxy into one answering 20 % 5xx.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.dataplane import Dataplane
from support.kube import Kube
from zentinel_devcluster import tools


def main() -> None:
    kubeconfig, control = Path(sys.argv[1]), Path(sys.argv[2])
    kube = Kube(tools.binary("kubectl"), kubeconfig)

    def setup(emu: object) -> None:
        for addr in ("10.0.1.10:8000", "10.0.1.11:8000", "10.0.1.12:8000"):
            emu.set_target("api", addr, "healthy")  # type: ignore[attr-defined]

    dp = Dataplane(kube, "zentinel-demo", "app=edge", setup=setup)
    share = -1.0
    try:
        while True:
            try:
                dp.sync()
                wanted = float(control.read_text().strip() or 0) if control.exists() else 0.0
                if wanted != share:
                    share = wanted
                    dp.traffic(rps=200, error_share=share / 100, routes=("api", "web"))
            except Exception as e:  # keep the demo running through a pod being replaced
                print(f"demo data plane: {e}", flush=True)
            time.sleep(1)
    finally:
        dp.stop()


if __name__ == "__main__":
    main()
