#!/usr/bin/env python3
"""The portability matrix's summary: the worst error of every comparison over the cells that ran.

  report.py OUT_DIR [--markdown]

Also writes the markdown table to OUT_DIR/report.md (for docs/testing.md).
OUT_DIR holds one LEVEL-tTHREADS-ONEDNN.tsv per cell (tests/portability/cell.sh), each line
"comparison<TAB>error<TAB>bound". Prints, per comparison, its bound, the worst error measured, the
cell where it was measured, and the margin (bound / worst error). Exits 1 when no cell left a log
or when any error exceeds its bound (the cell itself has failed then too), else 0.
"""
import math
import os
import sys


def read_cells(out_dir):
    cells = {}
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".tsv"):
            continue
        rows = []
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3:
                    rows.append((parts[0], float(parts[1]), float(parts[2])))
        cells[name[:-4]] = rows
    return cells


def summarise(cells):
    worst = {}
    for cell, rows in cells.items():
        for name, err, bound in rows:
            w = worst.setdefault(name, {"err": -1.0, "cell": "", "bound": bound, "cells": set(), "over": 0})
            w["cells"].add(cell)
            w["bound"] = max(w["bound"], bound)
            if not err <= bound:
                w["over"] += 1
            if math.isnan(err) or err > w["err"]:
                w["err"], w["cell"] = err, cell
    return worst


def margin(w):
    if w["err"] > 0:
        return f"{w['bound'] / w['err']:.3g}x"
    return "exact" if w["err"] == 0 and w["bound"] == 0 else "inf"


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir, markdown = argv[1], "--markdown" in argv[2:]
    cells = read_cells(out_dir) if os.path.isdir(out_dir) else {}
    cells = {c: rows for c, rows in cells.items() if rows}
    if not cells:
        print(f"report.py: no cell of the portability matrix left a log in {out_dir}")
        return 1
    worst = summarise(cells)
    header = f"{len(cells)} cells: {', '.join(sorted(cells))}"
    table = ["| comparison | bound | worst error | in cell | margin |", "|---|---|---|---|---|"]
    table += [f"| {n} | {worst[n]['bound']:.3g} | {worst[n]['err']:.3g} | {worst[n]['cell']} | {margin(worst[n])} |"
              for n in sorted(worst)]
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(header + "\n\n" + "\n".join(table) + "\n")
    print(header)
    if markdown:
        print("\n".join(table))
    else:
        width = max(len(n) for n in worst)
        print(f"{'comparison':<{width}}  {'bound':>9}  {'worst':>9}  {'margin':>8}  cell")
        for name in sorted(worst):
            w = worst[name]
            print(f"{name:<{width}}  {w['bound']:9.3g}  {w['err']:9.3g}  {margin(w):>8}  {w['cell']}"
                  + (f"  OVER THE BOUND in {w['over']} cell(s)" if w["over"] else ""))
    return 1 if any(w["over"] for w in worst.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
