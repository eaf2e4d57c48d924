"""How fast leaving a job is on the real yagna daemon (localnet): from the last result
to ``GolemProvider.close()`` returning, and from the last invoice accepted to close
returning (issue 9 item 6: at most 0.5 s; pending long polls must be ended, not
waited out); with the job's other parts: ``Golem()`` (the first demand) to the first
fragment running, and the steady rate (fragments per second from the first start to
the last result).

    python benchmarks/bench_golem_close.py [--fragments 50] [--providers 2] [--runs 3]

Needs the localnet extra: pip install -e '.[localnet]'.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Dict, List

from golem_tasks import Golem, events
from golem_tasks.localnet import LocalNet
from golem_tasks.providers.yagna import GolemProvider, InvoiceAccepted

IMAGE = dict(image_hash="a" * 56, image_url="http://127.0.0.1:9/image.gvmi")  # not booted locally


def echo(ctx, n):
    results = yield ctx.run("/bin/echo", str(n))
    return results[0].stdout


def one_run(net: LocalNet, fragments: int, providers: int) -> Dict[str, float]:
    assert net.requestor is not None
    seen: List[Any] = []

    def record(event: Any) -> None:
        seen.append((time.monotonic(), event))

    provider = GolemProvider(app_key=net.requestor.app_key, api_url=net.api_url, budget="5", **IMAGE)
    # The Golem hands the provider's events to its consumers too: one consumer, not two.
    started = time.monotonic()
    with Golem(provider, max_workers=providers, progress=False, events=record) as golem:
        list(golem.map(echo, range(fragments)))
    job_left = time.monotonic()
    provider.close()
    closed = time.monotonic()
    last_result = max(t for t, e in seen if isinstance(e, events.FragmentFinished))
    first_start = min(t for t, e in seen if isinstance(e, events.FragmentStarted))
    invoices = [t for t, e in seen if isinstance(e, InvoiceAccepted)]
    return {"wall": closed - started, "to_first_fragment": first_start - started,
            "steady_rate": fragments / (last_result - first_start), "result_to_closed": closed - last_result,
            "job_exit": job_left - last_result, "provider_close": closed - job_left,
            "invoice_to_closed": closed - max(invoices) if invoices else float("nan"),
            "invoices": float(len(invoices))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fragments", type=int, default=50)
    parser.add_argument("--providers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with LocalNet(providers=args.providers) as net:
        runs = [one_run(net, args.fragments, args.providers) for _ in range(args.runs)]
    for key in ("wall", "to_first_fragment", "steady_rate", "result_to_closed", "job_exit", "provider_close",
                "invoice_to_closed", "invoices"):
        values = [r[key] for r in runs]
        print(f"{key:>18}: median {statistics.median(values):7.3f}   all " +
              " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
