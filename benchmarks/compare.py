"""Two result files side by side: `python -m benchmarks compare OLD.json NEW.json`.

Per case: minitorch_edu's median in each file, its change, and the ratio mt / torch in each
file. The ratio is the number to compare across commits or machines: both sides were timed
together, so a busier machine moves both. Cases in only one file are listed as such.
"""

from __future__ import annotations


def _header(report: dict) -> str:
    return (
        f"{report.get('commit', '?')} {report.get('when', '')} ({report.get('device', '?')}, "
        f"{report.get('threads', '?')} threads, {report.get('clock', 'wall')} clock, "
        f"load {report.get('load_average_before', '?')})"
    )


def compare(old: dict, new: dict) -> str:
    lines = [f"old: {_header(old)}", f"new: {_header(new)}", ""]
    lines.append(
        f"{'case':<27}{'old mt ms':>10}{'new mt ms':>10}{'change':>9}"
        f"{'old ratio':>11}{'new ratio':>11}"
    )
    old_results = {r["case"]: r for r in old.get("results", [])}
    new_results = {r["case"]: r for r in new.get("results", [])}
    for name in [*old_results, *(n for n in new_results if n not in old_results)]:
        before, after = old_results.get(name), new_results.get(name)
        if before is None or after is None:
            lines.append(f"{name:<27}(only in the {'new' if before is None else 'old'} file)")
            continue
        change = after["mt_ms"] / before["mt_ms"] - 1
        lines.append(
            f"{name:<27}{before['mt_ms']:>10.3f}{after['mt_ms']:>10.3f}{change:>+9.1%}"
            f"{before['ratio']:>11.3f}{after['ratio']:>11.3f}"
        )
    old_memory = {m["case"]: m for m in old.get("memory", [])}
    new_memory = {m["case"]: m for m in new.get("memory", [])}
    shared = [name for name in old_memory if name in new_memory]
    if shared:
        lines.append("")
        lines.append(
            f"{'peak step memory':<27}{'old mt MiB':>11}{'new mt MiB':>11}"
            f"{'old ratio':>11}{'new ratio':>11}"
        )
        for name in shared:
            before, after = old_memory[name], new_memory[name]
            lines.append(
                f"{name:<27}{before['mt']['step_bytes'] / 2**20:>11.1f}"
                f"{after['mt']['step_bytes'] / 2**20:>11.1f}"
                f"{before['ratio']:>11.3f}{after['ratio']:>11.3f}"
            )
    return "\n".join(lines)
