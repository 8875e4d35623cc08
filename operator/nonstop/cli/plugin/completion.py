"""kubectl_complete-nonstop: completions for `kubectl nonstop ...<TAB>`.

kubectl (1.26+) completes a plugin by running kubectl_complete-<plugin> from PATH with the
words typed after the plugin's name, the last one being the word to complete (empty for a
new word), and reads one completion a line, `value<TAB>description`, then optionally
`:<directive>` (cobra's ShellCompDirective; kubectl's pkg/cmd/plugin/plugin_completion.go).
The completions are click's own for the same command line.
"""

from __future__ import annotations

import sys

from click.shell_completion import ShellComplete

from nonstop.cli.plugin.connect import Target
from nonstop.cli.plugin.group import COMPLETE_VAR, PROG, cli

NO_FILE_COMPLETION = 4  # cobra.ShellCompDirectiveNoFileComp
FILE_COMPLETION = 0  # cobra.ShellCompDirectiveDefault: the shell completes file names


def completions(words: list[str]) -> list[str]:
    """The lines kubectl expects for `kubectl nonstop <words>`."""
    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    complete = ShellComplete(cli, {"obj": Target()}, PROG, COMPLETE_VAR)
    items = complete.get_completions(args, incomplete)
    if any(item.type in ("file", "dir") for item in items):
        return [f":{FILE_COMPLETION}"]
    lines = [f"{item.value}\t{item.help}" if item.help else str(item.value) for item in items]
    return [*lines, f":{NO_FILE_COMPLETION}"]


def main() -> int:
    sys.stdout.write("".join(f"{line}\n" for line in completions(sys.argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
