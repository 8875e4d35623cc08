"""python -m nonstop.cli.plugin: the same as kubectl-nonstop."""

from nonstop.cli.plugin.group import main

raise SystemExit(main())
