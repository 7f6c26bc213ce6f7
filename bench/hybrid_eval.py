"""Semantic, keyword and hybrid search compared on the demo, against a running server.

    python app.py -t query-restful &             # the demo indexed, serving on :45678
    python bench/hybrid_eval.py --url http://127.0.0.1:45678

Sends every query of bench/relevance/paraphrases.json in every mode (`POST /search {"text", "limit": 5,
"modality": "image", "mode"}`) and scores the photo matches: a query is answered at rank r when the r-th distinct
photo of the answer is one the query names (its `tags.pair_id` is `demo/<name>.<ext>`, as dataset.py's demo reader
builds it). Prints R@1 and R@5 per mode for each query set (paraphrases of what a photo shows, words of file names,
rare caption words), lists the queries semantic search misses that keyword or hybrid search finds, and writes every
rank to results/hybrid.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

MODES = ("semantic", "keyword", "hybrid")
QUERY_SETS = ("paraphrases", "file_names", "caption_words")
DEMO_DATASET = "demo"
DEFAULT_QUERIES = Path(__file__).resolve().parent / "relevance" / "paraphrases.json"
KS = (1, 5)

# (status, JSON body or None) of one POST /search
Post = Callable[[dict[str, Any]], tuple[int, Any]]


def photo_name(pair_id: object) -> str | None:
    """The demo photo a pair id names (`demo/chelsea_cat.png` -> `chelsea_cat`); None for any other pair id."""
    if not isinstance(pair_id, str):
        return None
    path = PurePosixPath(pair_id)
    return path.stem if path.parent == PurePosixPath(DEMO_DATASET) else None


def ranked_photos(answer: Any) -> list[str]:
    """The distinct demo photos of an answer's photo matches, best first."""
    photos: list[str] = []
    matches = answer.get("matches") if isinstance(answer, dict) else None
    for match in matches if isinstance(matches, list) else ():
        if not isinstance(match, dict) or match.get("modality") != "image":
            continue
        tags = match.get("tags")
        name = photo_name(tags.get("pair_id") if isinstance(tags, dict) else None)
        if name is not None and name not in photos:
            photos.append(name)
    return photos


def answer_rank(answer: Any, expected: Sequence[str]) -> int | None:
    """The 1-based rank of the first photo of ``expected`` among the answer's photos; None when it is not there."""
    for rank, name in enumerate(ranked_photos(answer), start=1):
        if name in expected:
            return rank
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    return sum(rank is not None and rank <= k for rank in ranks) / len(ranks) if ranks else float("nan")


def load_queries(path: Path) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: data[name] for name in QUERY_SETS}


def evaluate(post: Post, queries: dict[str, list[dict[str, Any]]], modes: Sequence[str] = MODES,
             limit: int = 5) -> dict[str, Any]:
    """Every query in every mode: per query its rank and top photos per mode; per set and mode R@K, and errors."""
    per_query: dict[str, list[dict[str, Any]]] = {}
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for set_name, items in queries.items():
        rows = []
        for item in items:
            row: dict[str, Any] = {"text": item["text"], "photos": item["photos"], "ranks": {}, "top": {},
                                   "errors": {}}
            for mode in modes:
                status, answer = post({"text": item["text"], "limit": limit, "modality": "image", "mode": mode})
                if status != 200:
                    row["ranks"][mode] = None
                    row["errors"][mode] = f"{status}: {_error_message(answer)}"
                    continue
                row["ranks"][mode] = answer_rank(answer, item["photos"])
                row["top"][mode] = ranked_photos(answer)
            rows.append(row)
        per_query[set_name] = rows
        summary[set_name] = {}
        for mode in modes:
            ranks = [row["ranks"][mode] for row in rows]
            summary[set_name][mode] = {
                "queries": len(rows),
                "errors": sum(mode in row["errors"] for row in rows),
                **{f"R@{k}": recall_at(ranks, k) for k in KS},
            }
    return {"modes": list(modes), "limit": limit, "summary": summary, "queries": per_query,
            "found_only_without_semantic": found_only_without_semantic(per_query, modes)}


def found_only_without_semantic(per_query: dict[str, list[dict[str, Any]]],
                                 modes: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per set, the queries semantic search misses (not in its top results) that another mode finds."""
    if "semantic" not in modes:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for set_name, rows in per_query.items():
        found[set_name] = [
            {"text": row["text"], **{mode: row["ranks"][mode] for mode in modes}}
            for row in rows
            if row["ranks"]["semantic"] is None and not row["errors"].get("semantic")
            and any(row["ranks"][mode] is not None for mode in modes if mode != "semantic")
        ]
    return found


def format_table(result: dict[str, Any]) -> str:
    modes = result["modes"]
    header = f"{'query set':<16}{'queries':>8}  " + "  ".join(f"{mode + ' R@1/R@5':>22}" for mode in modes)
    lines = [header, "-" * len(header)]
    for set_name, by_mode in result["summary"].items():
        cells = []
        for mode in modes:
            stats = by_mode[mode]
            cell = "failed" if stats["errors"] == stats["queries"] else f"{stats['R@1']:.2f} / {stats['R@5']:.2f}"
            if 0 < stats["errors"] < stats["queries"]:
                cell += f" ({stats['errors']} err)"
            cells.append(f"{cell:>22}")
        count = next(iter(by_mode.values()))["queries"] if by_mode else 0
        lines.append(f"{set_name:<16}{count:>8}  " + "  ".join(cells))
    for set_name, rows in result.get("found_only_without_semantic", {}).items():
        if rows:
            lines.append(f"{set_name}: missed by semantic, found by " + "; ".join(
                f"{row['text']!r} ({', '.join(f'{m} @{row[m]}' for m in modes if m != 'semantic' and row[m])})"
                for row in rows))
    return "\n".join(lines)


def _error_message(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message", ""))
    return str(answer)[:200]


def http_post(client: httpx.Client) -> Post:
    def post(body: dict[str, Any]) -> tuple[int, Any]:
        response = client.post("/search", json=body)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text
    return post


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:45678")
    parser.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("results/hybrid.json"))
    args = parser.parse_args(argv)
    queries = load_queries(args.queries)
    started = time.perf_counter()
    with httpx.Client(base_url=args.url, timeout=60) as client:
        try:
            stats = client.get("/stats").json()
        except (httpx.HTTPError, ValueError) as error:
            print(f"cannot reach {args.url}: {error}", file=sys.stderr)
            return 1
        result = evaluate(http_post(client), queries, args.modes, args.limit)
    result.update(url=args.url, stats=stats, seconds=round(time.perf_counter() - started, 2),
                  queries_file=str(args.queries))
    print(format_table(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    failed = [f"{s}/{m}" for s, by_mode in result["summary"].items() for m, v in by_mode.items()
              if v["errors"] == v["queries"]]
    if failed:
        print(f"every query failed in {', '.join(failed)} (does the server take \"mode\"?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
