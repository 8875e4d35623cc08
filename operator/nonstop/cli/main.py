"""The `nonstop` command: run the operator, print the CRD."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading

import structlog
import yaml

from nonstop import __version__


def configure_logging(json_logs: bool, verbose: bool) -> None:
    """One pipeline for every log line: ours (structlog) and the libraries' (kopf, the
    Kubernetes client, urllib3, through the standard library's logging), rendered alike:
    JSON lines with --json-logs (one object per line, for log shippers), readable text on
    a terminal. Everything goes to stderr through one handler, so lines never interleave."""
    level = logging.DEBUG if verbose else logging.INFO
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # a library's record: its logger's name, level and time, then the same renderer
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    threading.excepthook = _log_thread_crash
    # kopf reports every handler call; the client logs each request at debug: noise unless -v
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _log_thread_crash(crash: threading.ExceptHookArgs) -> None:
    """A thread that dies says so in the same pipeline (not as a bare traceback)."""
    name = crash.thread.name if crash.thread else "?"
    exc = crash.exc_value or crash.exc_type()
    logging.getLogger("nonstop").error(
        "thread %s crashed", name, exc_info=(crash.exc_type, exc, crash.exc_traceback)
    )


# `nonstop run` settings that take a number, each also from an environment variable (the
# chart passes flags; a plain process may use either).
TUNABLES: list[tuple[str, str, type[int] | type[float], int | float, str]] = [
    ("--workers", "NONSTOP_WORKERS", int, 10, "passes run at once (Argo Rollouts' threads)"),
    (
        "--resync",
        "NONSTOP_RESYNC",
        float,
        300,
        "seconds a Rollout goes at most without a pass when no change woke it, a guard"
        " against a missed event",
    ),
    (
        "--qps",
        "NONSTOP_QPS",
        float,
        40,
        "requests per second to the API server, sustained; 0: unlimited",
    ),
    ("--burst", "NONSTOP_BURST", int, 80, "requests at once above --qps"),
    (
        "--metrics-port",
        "NONSTOP_METRICS_PORT",
        int,
        8090,
        "serve Prometheus metrics on this port at /metrics, as Argo Rollouts; 0: off;"
        " see docs/metrics.md",
    ),
]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def run(args: argparse.Namespace) -> int:
    import kopf

    import nonstop.handlers  # registers the handlers with kopf
    from nonstop.leader import lease_settings

    configure_logging(args.json_logs, args.verbose)
    nonstop.handlers.configure(
        nonstop.handlers.Settings(
            leader=lease_settings(args.lease_name, args.lease_namespace)
            if args.leader_elect
            else None,
            namespaces=tuple(args.namespace or ()),
            workers=args.workers,
            resync=args.resync,
            qps=args.qps,
            burst=args.burst,
            metrics_port=args.metrics_port,
            metrics_address=args.metrics_address,
        )
    )
    asyncio.run(
        kopf.operator(
            # kopf runs no watch of its own: the cache watches (in the namespaces above)
            clusterwide=True,
            standalone=True,
            liveness_endpoint=args.liveness,
        )
    )
    return 0


def crd(args: argparse.Namespace) -> int:
    from nonstop.api.crd import action_crd, rollout_crd, template_crd

    made = {
        "rollouts": rollout_crd,
        "rolloutactions": action_crd,
        "analysistemplates": template_crd,
    }[args.kind]()
    sys.stdout.write(yaml.safe_dump(made, sort_keys=False, width=100))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nonstop", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nonstop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    p_run.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable)"
    )
    p_run.add_argument("--json-logs", action="store_true", help="log JSON lines (for clusters)")
    p_run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    p_run.add_argument("-v", "--verbose", action="store_true")
    p_run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=_env_flag("NONSTOP_LEADER_ELECT"),
        help="run passes only while holding a Lease, so that replicas can stand by"
        " (default: $NONSTOP_LEADER_ELECT, else off: this process is the only writer;"
        " the Helm chart turns it on)",
    )
    p_run.add_argument(
        "--lease-name", default=None, help="default: $NONSTOP_LEASE_NAME or nonstop-leader"
    )
    p_run.add_argument(
        "--lease-namespace",
        default=None,
        help="default: $NONSTOP_LEASE_NAMESPACE, $POD_NAMESPACE, the pod's namespace, or default",
    )
    for flag, env, cast, default, what in TUNABLES:
        p_run.add_argument(
            flag,
            type=cast,
            default=cast(os.environ.get(env, str(default))),
            help=f"{what} (default: ${env} or {default})",
        )
    p_run.add_argument(
        "--metrics-address",
        default=os.environ.get("NONSTOP_METRICS_ADDRESS", "0.0.0.0"),
        help="the address the metrics port listens on (default: $NONSTOP_METRICS_ADDRESS or"
        " 0.0.0.0, every interface, as a pod needs; 127.0.0.1 keeps it local)",
    )
    p_run.set_defaults(func=run)
    p_crd = sub.add_parser("crd", help="print a CRD generated from the models")
    p_crd.add_argument(
        "kind",
        nargs="?",
        default="rollouts",
        choices=["rollouts", "rolloutactions", "analysistemplates"],
    )
    p_crd.set_defaults(func=crd)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
