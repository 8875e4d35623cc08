"""The `kubectl nonstop` command line (click): kubectl's cluster options before or after
the subcommand, one-line errors with documented exit codes (plugin/errors.py), shell
completion, and the commands."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem, get_completion_class
from rich.console import Console, RenderableType

from nonstop import __version__
from nonstop.api import GROUP, PLURAL, VERSION
from nonstop.cli.plugin import actions, live, view
from nonstop.cli.plugin.connect import Connection, Target, kubeconfig_files
from nonstop.cli.plugin.errors import (
    CLIENT_ERRORS,
    INTERRUPTED,
    OK,
    PluginError,
    UnreachableError,
    doing,
    explain,
)
from nonstop.plan.model import ROLLOUT_LABEL

PROG = "kubectl nonstop"
EXECUTABLE = "kubectl-nonstop"
COMPLETE_VAR = "_KUBECTL_NONSTOP_COMPLETE"
# The offline commands (they read files, not the cluster): name -> a module of nonstop.cli
# that exports a click.Command called `command`. Listed when the module is there, imported
# only when asked for, so that they add nothing to the start-up of the others (and a
# dependency of theirs that is missing breaks only them).
OFFLINE = {
    "lint": "nonstop.cli.lint",
    "plan": "nonstop.cli.planview",
    "convert": "nonstop.cli.convert",
}
F = TypeVar("F", bound=Callable[..., Any])


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Commands(click.Group):
    """Commands listed in the order they were added (the order of the help), not A-Z;
    `lazy` ones (name -> module) after them, imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        found = [n for n, m in self.lazy.items() if n not in self.commands and _module_exists(m)]
        return [*self.commands, *found]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy.get(cmd_name)
        if cmd_name not in self.commands and module and _module_exists(module):
            self.add_command(importlib.import_module(module).command, cmd_name)
        return self.commands.get(cmd_name)


# --- kubectl's options, before or after the subcommand ---------------------------------


def _target(ctx: click.Context) -> Target:
    return ctx.ensure_object(Target)


def _keep(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Store an option's value in the Target shared by the group and its subcommands; the
    one written later (after the subcommand) wins."""

    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> None:
        target = _target(ctx)
        if isinstance(value, str) or value is True:
            setattr(target, field, value)

    return callback


def _complete_contexts(ctx: click.Context, _: click.Parameter, incomplete: str) -> list[str]:
    from kubernetes import config

    target = _target(ctx)
    files = [f for f in kubeconfig_files(target.kubeconfig) if os.path.isfile(f)]
    try:
        contexts, _current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(files) or None
        )
    except Exception:  # completion never fails loudly
        return []
    return [c["name"] for c in contexts or [] if c.get("name", "").startswith(incomplete)]


def _complete_namespaces(ctx: click.Context, _: click.Parameter, incomplete: str) -> list[str]:
    try:
        listing = _target(ctx).connect().kube.request_json("GET", "/api/v1/namespaces") or {}
    except Exception:  # completion never fails loudly
        return []
    names = [n["metadata"]["name"] for n in listing.get("items") or []]
    return [n for n in names if n.startswith(incomplete)]


def _complete_rollouts(
    ctx: click.Context, _: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    try:
        connection = _target(ctx).connect()
        found = connection.kube.request_json("GET", _rollouts_path(connection.namespace)) or {}
    except Exception:  # completion never fails loudly
        return []
    return [
        CompletionItem(r["metadata"]["name"], help=(r.get("status") or {}).get("phase"))
        for r in found.get("items") or []
        if r["metadata"]["name"].startswith(incomplete)
    ]


def cluster_options(all_namespaces: bool = False) -> Callable[[F], F]:
    """-n, --context, --kubeconfig (and -A) on a command: the group has them too, so that
    `kubectl nonstop -n demo get web` and `kubectl nonstop get web -n demo` are the same."""

    def decorate(f: F) -> F:
        options = [
            click.option(
                "-n",
                "--namespace",
                metavar="NAMESPACE",
                expose_value=False,
                callback=_keep("namespace"),
                shell_complete=_complete_namespaces,
                help="The namespace (default: the context's, else default).",
            ),
            click.option(
                "--context",
                metavar="CONTEXT",
                expose_value=False,
                callback=_keep("context"),
                shell_complete=_complete_contexts,
                help="The kubeconfig context to use (default: the current one).",
            ),
            click.option(
                "--kubeconfig",
                metavar="FILE",
                type=click.Path(dir_okay=False),
                expose_value=False,
                callback=_keep("kubeconfig"),
                help="The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
            ),
        ]
        if all_namespaces:
            options.append(
                click.option(
                    "-A",
                    "--all-namespaces",
                    is_flag=True,
                    expose_value=False,
                    callback=_keep("all_namespaces"),
                    help="Rollouts of every namespace (get and list without NAME).",
                )
            )
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def connection(*, all_namespaces_ok: bool = False) -> Connection:
    target = _target(click.get_current_context())
    if target.all_namespaces and not all_namespaces_ok:
        raise click.UsageError("-A/--all-namespaces is for get and list without a NAME")
    return target.connect()


def console() -> Console:
    """stdout: a terminal gets colour and its width; a pipe gets plain text, wide enough
    that rows are not cut (rich would assume 80 columns)."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS") or 0) or 200, soft_wrap=False)


def emit(out: Console, renderable: RenderableType) -> None:
    """Print a page: in colour on a terminal; as plain text without trailing blanks elsewhere."""
    if out.is_terminal:
        out.print(renderable)
    else:
        out.file.write(view.plain(renderable, out.width))


# --- the group -----------------------------------------------------------------------


@click.group(
    cls=Commands,
    lazy=OFFLINE,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok; 1 rejected, not found, forbidden or failed; 2 usage;"
    " 3 cannot reach the cluster; 4 timed out. See docs/plugin.md.",
)
@click.version_option(__version__, "--version", prog_name=EXECUTABLE)
@cluster_options(all_namespaces=True)
def cli() -> None:
    """Watch and operate nonstop Rollouts.

    \b
      kubectl nonstop list                  # the Rollouts of the namespace (-A: all)
      kubectl nonstop get web --watch       # one Rollout, live: step, weights, pods, Events
      kubectl nonstop promote web           # RolloutActions: nonstop applies and answers
      kubectl nonstop set image web app=registry.example/web:2
    """


def _rollouts_path(namespace: str | None) -> str:
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{GROUP}/{VERSION}{where}/{PLURAL}"


ROLLOUTS = f"{PLURAL}.{GROUP}"


def _list(watch: bool, output: str | None) -> int:
    target = _target(click.get_current_context())
    conn = connection(all_namespaces_ok=True)
    namespace = None if target.all_namespaces else conn.namespace
    if watch:
        return live.follow_list(conn.kube, namespace, console(), output)
    with doing("list", ROLLOUTS, namespace, user=conn.user, server=conn.server):
        listing = conn.kube.request_json("GET", _rollouts_path(namespace))
    if listing is None:
        raise PluginError(
            f"the API server does not serve {ROLLOUTS}: is nonstop's CRD installed?"
            " (kubectl apply -f crds/)"
        )
    items = listing.get("items") or []
    if output:
        click.echo(live.dump(live.as_list(items), output), nl=False)
        return OK
    out = console()
    if not items:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        click.echo(f"No Rollouts found in {where}.", err=True)
        return OK
    emit(out, view.render_list(items, view.utcnow(), all_namespaces=namespace is None))
    return OK


def _show(name: str, watch: bool, output: str | None) -> int:
    conn = connection()
    rollout = actions.get_rollout(conn.kube, conn.namespace, name)  # not found: exit 1
    if watch:
        return live.follow(conn.kube, conn.namespace, name, console(), output)
    if output:
        click.echo(live.dump(rollout, output), nl=False)
        return OK
    emit(console(), view.render_rollout(read_snapshot(conn, rollout), view.utcnow()))
    return OK


def read_snapshot(conn: Connection, rollout: dict[str, Any]) -> view.Snapshot:
    """The Rollout's page, read once. Parts the user may not read become notes."""
    meta = rollout["metadata"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    selector = f"{ROLLOUT_LABEL}={name}"
    notes: list[str] = []

    def part(resource: str, read: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            with doing("list", resource, namespace, user=conn.user, server=conn.server):
                return read()
        except UnreachableError:
            raise  # the cluster went away: that is not a note
        except PluginError as exc:
            notes.append(f"cannot show {resource}: {exc.format_message()}")
            return []

    deployments = part("deployments.apps", lambda: conn.kube.list_deployments(namespace, selector))
    pods = part("pods", lambda: conn.kube.list_pods(namespace, selector))
    events = part(
        "events",
        lambda: (
            (
                conn.kube.request_json(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/events",
                    query={"fieldSelector": f"involvedObject.name={name}"},
                )
                or {}
            ).get("items")
            or []
        ),
    )
    rollout_actions = part(
        actions.ACTIONS,
        lambda: [
            a
            for a in conn.kube.list_actions(namespace, name)
            if (a.get("spec") or {}).get("rollout") == name
        ],
    )
    return view.Snapshot(
        name=name,
        namespace=namespace,
        rollout=rollout,
        deployments=[
            d
            for d in deployments
            if any(o.get("uid") == uid for o in d["metadata"].get("ownerReferences") or [])
        ],
        pods=pods,
        events=events,
        actions=rollout_actions,
        notes=notes,
    )


WATCH_HELP = "Stay and redraw on every change (a watch, not polling); Ctrl-C ends it (exit 0)."
OUTPUT = click.Choice(["json", "yaml"])


@cli.command("get", short_help="One Rollout live (-w), or the list.")
@click.argument("name", required=False, shell_complete=_complete_rollouts)
@click.option("-w", "--watch", is_flag=True, help=WATCH_HELP)
@click.option("-o", "--output", type=OUTPUT, help="Print the object(s) instead of the page.")
@cluster_options(all_namespaces=True)
def get(name: str | None, watch: bool, output: str | None) -> int:
    """One Rollout's page, or without NAME the list of Rollouts.

    The page: strategy, step k of n with a progress bar, the traffic weights, the
    revisions with their pods (ready/total) and images, analysis runs with their latest
    measurements, why it is paused or aborted, the latest RolloutActions and Events.
    """
    if name is None:
        return _list(watch, output)
    if _target(click.get_current_context()).all_namespaces:
        raise click.UsageError("a Rollout is got by NAME in one namespace: drop -A or NAME")
    return _show(name, watch, output)


@cli.command("list", short_help="The Rollouts of a namespace (-A: all).")
@click.option("-w", "--watch", is_flag=True, help=WATCH_HELP)
@click.option("-o", "--output", type=OUTPUT, help="Print the objects instead of the table.")
@cluster_options(all_namespaces=True)
def list_(watch: bool, output: str | None) -> int:
    """The Rollouts of the namespace (with -A: of all namespaces) in a table."""
    return _list(watch, output)


@cli.command("status", short_help="Same as get NAME.")
@click.argument("name", shell_complete=_complete_rollouts)
@click.option("-w", "--watch", is_flag=True, help=WATCH_HELP)
@click.option("-o", "--output", type=OUTPUT, help="Print the object instead of the page.")
@cluster_options()
def status(name: str, watch: bool, output: str | None) -> int:
    """Same as `get NAME` (kept for scripts written for earlier versions)."""
    return _show(name, watch, output)


def _action_command(verb: str) -> click.Command:
    @click.argument("name", shell_complete=_complete_rollouts)
    @click.option("--reason", default=None, help="Why, for the record (in the Event).")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=30.0,
        show_default=True,
        help="Seconds to wait for nonstop's answer (then exit 4).",
    )
    @cluster_options()
    def run(name: str, reason: str | None, timeout: float) -> int:
        conn = connection()
        return actions.act(conn.kube, conn.namespace, name, verb, reason, timeout)

    run.__doc__ = (
        f"{actions.HELP[verb]}\n\nCreates a RolloutAction `{actions.VERBS[verb]}` owned by the"
        " Rollout and waits for nonstop's answer: exit 0 Applied, 1 Rejected, 4 no answer."
    )
    return click.command(verb, short_help=actions.HELP[verb])(run)


for _verb in actions.VERBS:
    cli.add_command(_action_command(_verb))


@cli.group("set", cls=Commands, short_help="Change the pod template: set image.")
@cluster_options()
def set_() -> None:
    """Change a Rollout's pod template (a new revision, rolled out by its strategy)."""


@set_.command("image", short_help="Set container images.")
@click.argument("name", shell_complete=_complete_rollouts)
@click.argument("images", nargs=-1, required=True, metavar="CONTAINER=IMAGE...")
@cluster_options()
def set_image(name: str, images: tuple[str, ...]) -> int:
    """Set container images, as `kubectl set image` (`*=IMAGE`: every container)."""
    wanted = actions.parse_images(images)
    conn = connection()
    changed = actions.change_template(
        conn.kube, conn.namespace, name, lambda t: actions.with_images(t, wanted)
    )
    click.echo(f"rollout.{GROUP}/{name} image {'updated' if changed else 'unchanged'}")
    return OK


@cli.command("restart", short_help="A new revision of the same template.")
@click.argument("name", shell_complete=_complete_rollouts)
@cluster_options()
def restart(name: str) -> int:
    """Roll out the same pod template again, as `kubectl rollout restart`: a new revision
    that differs only by the annotation kubectl.kubernetes.io/restartedAt."""
    conn = connection()
    actions.change_template(
        conn.kube, conn.namespace, name, lambda t: actions.with_restart(t, view.utcnow())
    )
    click.echo(f"rollout.{GROUP}/{name} restarted")
    return OK


@cli.command("completion", short_help="Print a shell completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the completion script for `kubectl-nonstop` in SHELL.

    \b
    `kubectl nonstop <TAB>` needs none of it: kubectl (1.26+) asks the
    kubectl_complete-nonstop executable installed beside kubectl-nonstop.
    """
    complete = get_completion_class(shell)
    assert complete is not None
    click.echo(complete(cli, {}, EXECUTABLE, COMPLETE_VAR).source())
    return OK


# --- the entry point -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """kubectl-nonstop: the exit code, after one line on stderr if something went wrong."""
    target = Target()
    try:
        result = cli.main(
            args=argv,
            prog_name=PROG,
            complete_var=COMPLETE_VAR,
            standalone_mode=False,
            obj=target,
        )
    except click.ClickException as exc:  # PluginError, and click's usage errors (exit 2)
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C outside the live view (which ends with 0 by itself)
        click.echo("interrupted", err=True)
        return INTERRUPTED
    except BrokenPipeError:  # `kubectl nonstop list | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except CLIENT_ERRORS as exc:  # a request outside any `doing`: still one line
        connected = target._connection
        error = explain(
            exc,
            user=connected.user if connected else None,
            server=connected.server if connected else None,
        )
        error.show()
        return error.exit_code
    return result if isinstance(result, int) else OK
