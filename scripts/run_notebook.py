"""Execute a notebook and keep what it showed: results/<name>.ipynb (with every output) and results/<name>.html.

    python scripts/run_notebook.py notebooks/compare_models.ipynb [--out results] [--timeout 3600]

`make notebook` runs it on the comparison notebook. Exit status 1 (with the failing cell's error) when a cell
fails; the partly executed notebook is still saved, so the error can be read in it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter


def run(notebook: Path, out_dir: Path, timeout: int = 3600) -> tuple[Path, Path]:
    """Execute `notebook` (working directory: its folder) and save it with outputs, plus an HTML copy."""
    nb = nbformat.read(notebook, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb, html = out_dir / notebook.name, out_dir / f"{notebook.stem}.html"
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.resolve().parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, ipynb)
        body, _ = HTMLExporter().from_notebook_node(nb)
        html.write_text(body, encoding="utf-8")
    return ipynb, html


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args()
    try:
        ipynb, html = run(args.notebook, args.out, args.timeout)
    except CellExecutionError as err:
        print(f"{args.notebook}: a cell failed (saved as far as it ran in {args.out}):\n{err}", file=sys.stderr)
        return 1
    print(f"executed {args.notebook}: {ipynb} and {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
