"""``im cache list | verify | prune --max-size SIZE``."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

__all__ = ["configure"]


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def configure(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Add the ``cache`` subcommands to ``parser``; return the handler."""
    sub = parser.add_subparsers(dest="cache_command", required=True)
    ls = sub.add_parser("list", help="list cached packages, least recently used first")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ver = sub.add_parser("verify", help="re-hash every cached file; delete and re-fetch corrupt ones")
    ver.add_argument("--no-repair", action="store_true", help="only delete corrupt files, do not re-fetch")
    pr = sub.add_parser("prune", help="evict least recently used packages until the cache fits a size")
    pr.add_argument("--max-size", required=True, help="e.g. 500MB, 2GB, 1.5GiB")
    pr.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    return _run


def _run(args: argparse.Namespace) -> int:
    from im_core._cache import ModelCache, parse_size, prune, verify

    cache = ModelCache()
    cache.check_home()
    if args.cache_command == "list":
        packages = cache.packages()
        if args.json:
            rows = [
                {
                    "model_id": p.model_id,
                    "package_id": p.package_id,
                    "provider": p.provider,
                    "size_bytes": p.size_bytes,
                    "last_used": p.last_used,
                    "path": str(p.path),
                }
                for p in packages
            ]
            print(json.dumps(rows, indent=2))
            return 0
        if not packages:
            print(f"The cache at {cache.root} holds no packages.")
            return 0
        print(f"{'model':40} {'package':24} {'provider':10} {'size':>10}  last used")
        for p in reversed(packages):
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.last_used))
            print(f"{p.model_id:40} {p.package_id:24} {p.provider or '-':10} {_human(p.size_bytes):>10}  {used}")
        return 0
    if args.cache_command == "verify":
        report = verify(cache, repair=not args.no_repair)
        print(
            f"checked {report.checked} files: {len(report.corrupt)} corrupt, {len(report.repaired)} packages "
            f"repaired, {len(report.broken)} left incomplete"
        )
        for name in report.corrupt:
            print(f"  corrupt: {name}")
        for name in report.broken:
            print(f"  incomplete (load it again online to re-fetch): {name}")
        return 0 if report.ok else 1
    pruned = prune(cache, parse_size(args.max_size), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(pruned.removed_packages)} packages and {pruned.removed_blobs} blobs: "
        f"{_human(pruned.before_bytes)} -> {_human(pruned.after_bytes)}"
    )
    for name in pruned.removed_packages:
        print(f"  {name}")
    for name in pruned.removed_incomplete:
        print(f"  {name} (an interrupted build)")
    for name in pruned.removed_partial:
        print(f"  tmp/{name} (a partial download nobody resumed)")
    return 0
