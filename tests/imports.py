"""Which modules a command imports: run `vidvpr ARGV` in a fresh interpreter and list them."""

from __future__ import annotations

import json
import subprocess
import sys


def imports_of_command(argv: list[str], roots: tuple[str, ...],
                       env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(the command's stdout, the modules of the top-level packages `roots` it imported, sorted). The
    command may exit with any code: far enough to have imported what it runs with."""
    code = (
        "import json, sys\n"
        "from vidvpr.cli import main\n"
        "try:\n"
        f"    main.main({argv!r}, prog_name='vidvpr', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    stdout, _, loaded = done.stdout.rstrip("\n").rpartition("\n")
    return stdout, json.loads(loaded)
