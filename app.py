"""Cross-modal search CLI: index a photo collection, query it with a sentence or a photo, serve it, evaluate it.

    python app.py -t index -d demo            # index the built-in demo photos into ./workspace
    python app.py -t index -d folder --data-dir ~/Pictures   # a photo folder: re-run it to sync the index
    python app.py -t watch -d folder --data-dir ~/Pictures   # keep syncing it while the folder changes
    python app.py -t query --text "a cup of coffee"
    python app.py -t query-restful            # serve http://127.0.0.1:45678 until Ctrl-C / SIGTERM
    python app.py -t evaluate -d demo         # R@1/5/10 and median rank, both directions
    python app.py -t download -d f8k          # Flickr8k through the Kaggle API (needs your token)
    python app.py -t download --model clip    # a model's weights into ./models; prints the flags that load them
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import itertools
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("JINA_OPTOUT_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from serving.runtime.processes import allow_torch, keep_torch_out  # noqa: E402

# Before docarray is imported: this process and the flow processes forked from it run no model, so they need no
# torch (the encoders allow it again in their own processes). -t download allows it again too. Only when run as the
# CLI: a process that imports app.py (the tests) keeps its own imports.
if __name__ == "__main__":
    keep_torch_out()

from crossmodal.backends import DEFAULT_BACKEND, backend_spec, backend_specs  # noqa: E402
from crossmodal.backends.flags import add_model_flags, flags_of_other_models, given_by  # noqa: E402
from crossmodal.download import KAGGLE_DATASETS, DownloadError  # noqa: E402
from crossmodal.evaluation.metrics import DEFAULT_KS  # noqa: E402
from crossmodal.index import StoreError  # noqa: E402
from dataset import DATASETS, open_dataset  # noqa: E402
from serving.jobs.client import SearchError  # noqa: E402
from serving.runtime.flows import DEFAULT_PORT, FlowSettings  # noqa: E402
from serving.runtime.output import configure_output  # noqa: E402

TASKS = ("index", "query", "query-restful", "evaluate", "download", "watch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-t", "--task", choices=TASKS, required=True,
                        help="download: the dataset of -d f8k|f30k (Kaggle) and/or the weights of --model NAME "
                             "(into --models-dir; prints the flags that load them)")
    parser.add_argument("-n", "--num-docs", type=int, default=None, help="index at most this many images")
    parser.add_argument("-b", "--batch-size", type=int, default=32, help="images per request and per encoder batch")
    parser.add_argument("-d", "--dataset", choices=DATASETS, default="demo")
    parser.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: data/<dataset>)")
    parser.add_argument("--split", default=None, help="train|val|test|restval (default: all; evaluate: test)")
    parser.add_argument("--workspace", type=Path, default=Path("workspace"), help="where indexes persist")
    models = "; ".join(f"{name}: {spec.summary}" for name, spec in backend_specs().items())
    parser.add_argument("--model", default=None, choices=list(backend_specs()),
                        help=f"model backend (default: {DEFAULT_BACKEND}); {models}")
    add_model_flags(parser.add_argument_group("model options", "each applies to the models named in its help"),
                    fetch_hint="-t download")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="where -t download --model puts weights (default: models)")
    parser.add_argument("--archive", type=Path, help="a Kaggle zip downloaded by hand (-t download -d f8k|f30k)")
    parser.add_argument("--host", default="127.0.0.1", help="address the gateway binds (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--shards", type=int, default=int(os.environ.get("CROSSMODAL_SHARDS", 1)),
                        help="shards per indexer (index and query with the same number)")
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("CROSSMODAL_REPLICAS", 1)),
                        help="replicas per encoder")
    parser.add_argument("--index-type", choices=("flat", "hnsw"),
                        default=os.environ.get("CROSSMODAL_INDEX_TYPE", "flat"),
                        help="exact search (flat) or approximate (FAISS HNSW)")
    parser.add_argument("--ef-search", type=int, default=int(os.environ.get("CROSSMODAL_EF_SEARCH", 64)),
                        help="HNSW candidates per query: higher is more accurate and slower (docs/scale-out.md)")
    parser.add_argument("--text", action="append", default=[],
                        help="text query (-t query); repeat it to add more parts to the query")
    parser.add_argument("--image", action="append", type=Path, default=[],
                        help="image query file (-t query); repeatable, and combinable with --text")
    parser.add_argument("--not", dest="not_text", action="append", default=[], metavar="TEXT",
                        help="subtract what this text describes from the query (-t query; repeatable)")
    parser.add_argument("--not-image", action="append", type=Path, default=[], metavar="PATH",
                        help="subtract what this photo shows from the query (-t query; repeatable)")
    parser.add_argument("--mode", choices=("semantic", "keyword", "hybrid"), default="hybrid",
                        help="-t query: by meaning, by the words of captions and file names, or both fused")
    parser.add_argument("--limit", type=int, default=10, help="number of results (-t query)")
    parser.add_argument("--modality", choices=("image", "text"), default=None,
                        help="-t query: return photos or captions (default: the other modality than the query's; "
                             "photos for a photo query on a collection without captions)")
    query_filters = parser.add_argument_group("-t query filters, sort and pages (photo results)")
    query_filters.add_argument("--folder", help="photos under this folder of the library (path prefix)")
    query_filters.add_argument("--taken-after", metavar="DATE", help="taken at or after (ISO date or local time)")
    query_filters.add_argument("--taken-before", metavar="DATE", help="taken at or before (ISO date or local time)")
    query_filters.add_argument("--has-location", action=argparse.BooleanOptionalAction, default=None,
                               help="only photos with (--has-location) or without (--no-has-location) GPS")
    query_filters.add_argument("--camera", help="camera name contains this (case-insensitive)")
    query_filters.add_argument("--place", help="taken at this city, region or country (\"Lisbon\", \"Paris, France\")")
    query_filters.add_argument("--sort", choices=("relevance", "taken"), default="relevance",
                               help="taken: the relevant photos, newest first")
    query_filters.add_argument("--offset", type=int, default=0, help="skip this many results (pages)")
    query_filters.add_argument("--all-duplicates", action="store_true",
                               help="list every near-duplicate photo instead of the best of each group")
    parser.add_argument("--reindex", action="store_true", help="re-encode documents that are already indexed")
    parser.add_argument("--mix", action="store_true",
                        help="-t index/watch of a photo folder: add it to a workspace that holds another collection "
                             "(by default that is refused: each collection in a workspace of its own)")
    parser.add_argument("--scan-interval", type=float, default=60.0, metavar="SECONDS",
                        help="-t watch: a full scan of the folder this often, besides its file-system events")
    parser.add_argument("--output", type=Path, default=None, help="metrics JSON file (-t evaluate)")
    parser.add_argument("--depth", type=int, default=1000,
                        help=f"results retrieved per query (-t evaluate; at least {max(DEFAULT_KS)})")
    parser.add_argument("--verbose", action="store_true", help="show Jina's and gRPC's own logs")
    args = parser.parse_args(argv)
    if args.task == "query" and not (args.text or args.image):
        parser.error("-t query needs a --text or an --image")
    if args.num_docs is not None and args.num_docs < 1:
        parser.error("-n/--num-docs must be positive")
    if args.task == "watch" and args.dataset != "folder":
        parser.error("-t watch needs -d folder --data-dir DIR (a photo folder without a captions file)")
    if args.scan_interval <= 0:
        parser.error("--scan-interval must be positive")
    if args.task == "evaluate" and args.depth < max(DEFAULT_KS):
        parser.error(f"--depth must be at least {max(DEFAULT_KS)}: R@{max(DEFAULT_KS)} needs that many results "
                     "per query")
    for flag, value in (("--shards", args.shards), ("--replicas", args.replicas), ("--ef-search", args.ef_search)):
        if value < 1:
            parser.error(f"{flag} must be at least 1")
    check_model_flags(parser, args)
    return args


def query_flag_problem(args: argparse.Namespace) -> str | None:
    """What the gateway would refuse in -t query's flags, said before any flow starts (None when they are usable)."""
    from crossmodal.index.photo_filter import FILTER_FIELDS, FilterError, parse_photo_filter

    most = FlowSettings().max_limit
    if not 1 <= args.limit <= most:
        return f"--limit must be between 1 and {most}, got {args.limit}"
    if args.offset < 0:
        return f"--offset must be 0 or more, got {args.offset}"
    try:
        parse_photo_filter({name: getattr(args, name) for name in FILTER_FIELDS})
    except FilterError as error:
        return f"--{error.field.replace('_', '-')}{str(error)[len(error.field) + 2:]}"
    for path in [*args.image, *args.not_image]:
        if not path.is_file():
            return f"--image {path}: no such file"
    return None


def check_indexed(workspace: Path) -> None:
    """A query needs an index: a mistyped --workspace is named, instead of an empty one created and searched."""
    from crossmodal.index import stored_settings
    from crossmodal.index.shards import shard_folders
    from crossmodal.index.workspace import index_folder
    from crossmodal.modality import MODALITIES

    if not any(stored_settings(folder) is not None for modality in MODALITIES
               for folder in shard_folders(index_folder(workspace, modality))):
        raise ValueError(f"{workspace} holds no index (is --workspace right? index first: python app.py -t index "
                         f"-d folder --data-dir PHOTOS --workspace {workspace})")


def check_port_free(host: str, port: int) -> None:
    """One line for a taken port, before the flow starts (Jina's own error is a traceback after its start)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(f"port {port} is in use (try --port N)" if error.errno == errno.EADDRINUSE
                             else f"cannot serve on {host}:{port}: {error.strerror}") from None


def check_model_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """-t download fetches what it is named (-d f8k|f30k, --model NAME); other tasks run --model (default
    DEFAULT_BACKEND) and need its required options. Flags of another model are refused rather than ignored."""
    if args.task == "download":
        if args.model is None and args.dataset not in KAGGLE_DATASETS:
            parser.error(f"-t download needs -d {'|'.join(KAGGLE_DATASETS)} (a dataset) and/or --model NAME "
                         "(its weights)")
        if args.model is not None:
            foreign = flags_of_other_models(backend_spec(args.model), args, fetch=True)
            if foreign:
                parser.error(f"--model {args.model} takes no {', '.join(foreign)}")
        return
    args.model = args.model or DEFAULT_BACKEND
    spec = backend_spec(args.model)
    foreign = flags_of_other_models(spec, args)
    if foreign:
        parser.error(f"--model {args.model} takes no {', '.join(foreign)}")
    missing = spec.missing(given_by(args))
    if missing:
        parser.error(f"--model {args.model} needs {' and '.join(option.flag for option in missing)}")


def model_options(args: argparse.Namespace) -> dict:
    """The chosen backend's options, with paths made absolute (the encoders run in other processes)."""
    return backend_spec(args.model).model_options(given_by(args))


def check_model(args: argparse.Namespace) -> None:
    """Load the backend once in a child process, so a missing weights file is one line, not an executor traceback.

    A child, because a process that has run torch must not fork the flow's executors afterwards (they hang).
    """
    if not backend_spec(args.model).check_before_start:
        return
    result = subprocess.run([sys.executable, "-m", "crossmodal.backends.check", args.model,
                             json.dumps(model_options(args))], capture_output=True, text=True)
    if result.returncode:
        lines = result.stderr.strip().splitlines()
        raise ValueError(lines[-1] if lines else f"the {args.model} model could not be loaded")


def settings_for(args: argparse.Namespace, **overrides) -> FlowSettings:
    values = dict(workspace=args.workspace, model=args.model, model_options=model_options(args),
                  batch_size=args.batch_size, host=args.host, port=args.port, shards=args.shards,
                  replicas=args.replicas, index_type=args.index_type, ef_search=args.ef_search)
    values.update(overrides)
    return FlowSettings(**values)


def run_index(args: argparse.Namespace, workspace: Path, split: str | None) -> None:
    """Index the dataset; when every photo of it is stored already, say so without starting a flow."""
    from serving.jobs.indexing import index_dataset
    from serving.runtime.flows import load_flow, running

    started = time.perf_counter()
    reader = open_dataset(args.dataset, data_dir=args.data_dir, workspace=workspace, split=split)
    if reader.is_library:
        run_library_index(args, reader, workspace)
        return
    done = nothing_to_index(args, reader, workspace)
    if done is not None:
        done.seconds = time.perf_counter() - started
        say(f"{workspace} is up to date: the {done.already_indexed} photos of {args.dataset} are indexed with their "
            "captions (--reindex encodes them again); no flow started")
        print(done.report())
        return
    check_model(args)
    say(f"starting the index flow ({args.model} model) ...")
    with running(load_flow("index", settings_for(args, workspace=workspace))) as flow:
        summary = index_dataset(flow, reader, workspace, args.batch_size, args.num_docs, reindex=args.reindex)
    print(summary.report())


def open_library(args: argparse.Namespace, reader, workspace: Path):
    """The sync of a photo folder without captions file (serving.jobs.sync), with the flags that do not apply to
    one refused."""
    from serving.jobs.sync import LibrarySync

    if args.num_docs is not None:
        raise ValueError("-n does not apply to a photo folder without captions file: a sync indexes all of it")
    if args.reindex:
        raise ValueError("--reindex does not apply to a photo folder without captions file: photos are encoded "
                         "once per content (delete the workspace to encode them again)")
    check_workspace_for(args, workspace)
    try:
        sync = LibrarySync(workspace, reader.root, reader.library, args.batch_size)
    except RuntimeError as error:  # LibraryStateError: another library's state, or a newer version's
        raise ValueError(str(error)) from None
    if not args.mix:
        refuse_mixing(sync, workspace)
    return sync


def refuse_mixing(sync, workspace: Path) -> None:
    """A folder's first sync into a workspace that already holds other photos (the demo, say) would mix the two
    collections in every answer: refused, naming the two ways on."""
    from crossmodal.index import stored_ids
    from crossmodal.index.shards import shard_folders
    from crossmodal.index.workspace import index_folder
    from crossmodal.modality import IMAGE

    if sync.state.records or sync.legacy_photos():
        return
    others = sum(len(stored_ids(folder)) for folder in shard_folders(index_folder(workspace, IMAGE)))
    if others:
        sync.close()
        raise ValueError(f"{workspace} already holds {others} photos of another collection (the demo?); index "
                         f"{sync.root} into a workspace of its own (--workspace DIR), or add it to this one "
                         "with --mix")


def check_workspace_for(args: argparse.Namespace, workspace: Path) -> None:
    from crossmodal.index.workspace import check_workspace

    check_workspace(workspace, args.shards)  # the refusals a flow's start would give (shards, schema version)


def run_library_index(args: argparse.Namespace, reader, workspace: Path) -> None:
    """Sync a photo folder (no captions file) into the index: the flow starts only when photos must be written."""
    from tqdm import tqdm

    from crossmodal.library import SyncRefused, library_suffixes
    from serving.runtime.flows import load_flow, running

    with open_library(args, reader, workspace) as sync:
        try:
            plan = sync.plan()
        except SyncRefused as error:
            raise ValueError(str(error)) from None
        if not plan.has_photos():
            say(f"warning: {reader.root} holds no photo to index (files seen: {plan.ignored + len(plan.skipped)}; "
                f"not photos: {plan.ignored}; skipped: {len(plan.skipped)}"
                + (f", e.g. {plan.skipped[0]}" if plan.skipped else "")
                + f"). Photos are {', '.join(sorted(library_suffixes()))} files, in subfolders too")
        if not sync.needs_flow(plan):
            summary = sync.apply(None, plan)
            say(f"{workspace} is up to date with {reader.root}; no flow started")
            print(summary.report())
            return
        check_model(args)
        say(f"starting the index flow ({args.model} model) to sync {len(plan.photos)} photos of {sync.root} ...")
        with running(load_flow("index", settings_for(args, workspace=workspace))) as flow, \
                tqdm(total=len(plan.photos), unit="photo", desc="syncing") as progress:
            summary = sync.apply(flow, plan, progress=progress.update)
    print(summary.report())


def run_watch(args: argparse.Namespace) -> None:
    """Keep the index in line with a photo folder until Ctrl-C / SIGTERM: one index flow, a sync on file-system
    events (debounced) and every --scan-interval seconds; each sync that changed something prints its line."""
    from serving.jobs.sync import watch_library
    from serving.runtime.flows import load_flow, running

    reader = open_dataset(args.dataset, data_dir=args.data_dir, workspace=args.workspace, split=args.split)
    if not reader.is_library:
        raise ValueError(f"-t watch syncs a photo folder without captions file; {args.data_dir} has "
                         f"{getattr(reader, 'captions_file', None)} (index it with -t index)")
    with open_library(args, reader, args.workspace) as sync:
        check_model(args)
        say(f"starting the index flow ({args.model} model) to watch {sync.root} ...")
        try:
            with running(load_flow("index", settings_for(args))) as flow:
                say(f"watching {sync.root} (full scan every {args.scan_interval:g} s; Ctrl-C to stop)")
                watch_library(sync, flow, report=lambda line: print(line, flush=True),
                              scan_interval=args.scan_interval)
        except KeyboardInterrupt:  # SIGINT or SIGTERM (serving.runtime.stop_signals): how a watch ends
            say(f"stopped watching {sync.root}")


def nothing_to_index(args: argparse.Namespace, reader, workspace: Path):
    """The summary of an index run that would send nothing (every photo of the first -n is stored with all its
    captions, or unreadable), or None when something must go through the flow.

    The flow's own rules, without the flow: `index_dataset` sends a photo unless all its documents are stored, and
    the reader has skipped the photos whose header is unreadable. So the scan decodes nothing and stops at the first
    photo that is not stored (then a flow starts); an index built by another model than --model takes the flow's
    path, as before."""
    from crossmodal.index import stored_ids, stored_settings
    from crossmodal.index.shards import shard_folders
    from crossmodal.index.workspace import check_workspace, index_folder
    from crossmodal.modality import IMAGE, TEXT
    from serving.jobs.indexing import IndexSummary, already_indexed

    if args.reindex:
        return None
    check_workspace(workspace, args.shards)  # the refusals a flow's start would give (shards, schema version)
    folders = [folder for modality in (IMAGE, TEXT) for folder in shard_folders(index_folder(workspace, modality))]
    settings = [stored_settings(folder) for folder in folders]
    if not settings or any(stored is None or stored.model_name.split(":", 1)[0] != args.model for stored in settings):
        return None
    known = set().union(*(stored_ids(folder) for folder in folders))
    summary = IndexSummary()
    for pair in (itertools.islice(reader, args.num_docs) if args.num_docs else reader):
        if not already_indexed(pair, known):
            return None  # a photo the reader found readable and that is not stored: the flow must run
        summary.already_indexed += 1
    summary.skipped = reader.skipped + summary.skipped
    return summary


def query_options(args: argparse.Namespace) -> dict:
    """The filter, sort and page flags of -t query as `POST /search` fields (the gateway validates them)."""
    from crossmodal.index.photo_filter import FILTER_FIELDS

    return {**{name: getattr(args, name) for name in FILTER_FIELDS}, "sort": args.sort, "offset": args.offset,
            "collapse_duplicates": not args.all_duplicates, "modality": args.modality}


def run_query(args: argparse.Namespace) -> None:
    from jina.helper import random_port

    from crossmodal.index.photo_filter import FILTER_FIELDS
    from serving.jobs.client import SearchClient, composed_query
    from serving.runtime.flows import load_flow, running

    body = composed_query(args.text, args.image, args.not_text, args.not_image, args.limit, args.mode,
                          options=query_options(args))
    settings = settings_for(args, host="127.0.0.1", port=random_port())
    with running(load_flow("query", settings)):
        client = SearchClient(f"http://127.0.0.1:{settings.port}")
        answer = client.search(body)
    matches = answer["matches"]
    filtered = any(body.get(name) is not None for name in FILTER_FIELDS)
    if not matches:
        print("no results pass the filters" if filtered or args.offset else
              "no results: is the workspace indexed? (python app.py -t index)")
    if matches and answer.get("note"):
        print(answer["note"])
    if matches and answer.get("no_good_match"):
        print("no good match: the best results below are weak (relevance under 0.5)")
    for rank, match in enumerate(matches, start=args.offset + 1):
        metadata = match.get("metadata") or {}
        label = match["text"] if match["modality"] == "text" else (
            metadata.get("path") or match["tags"].get("pair_id", match["id"]))
        taken = f"  taken {metadata['taken']}" if metadata.get("taken") else ""
        place = metadata.get("place") or {}
        where = ", ".join(name for name in (place.get("city"), place.get("country")) if name)
        taken += f"  in {where}" if where else ""
        relevance = "" if match.get("relevance") is None else f"  relevance {match['relevance']:.2f}"
        folded = match.get("duplicates") or 0
        similar = f"  (+{folded} near-duplicate{'s' if folded > 1 else ''})" if folded else ""
        print(f"{rank:3d}. {match['score']:.4f}{relevance}  [{match['modality']}] {label}{taken}{similar}")
    if answer.get("next_offset") is not None:
        print(f"{answer['total']} in all; next page: --offset {answer['next_offset']}")


def run_server(args: argparse.Namespace) -> None:
    from serving.runtime.flows import load_flow, serve_until_stopped

    started = time.monotonic()
    address = f"http://{args.host}:{args.port}"
    flow = load_flow("query", settings_for(args))
    say(f"starting cross-modal search on {address} ({args.model} model) ...")

    def ready() -> None:  # the gateway answers now: only then is the address worth trying
        print(f"serving cross-modal search on {address}  (ready in {time.monotonic() - started:.1f} s; "
              "Ctrl-C to stop)", flush=True)

    serve_until_stopped(flow, on_ready=ready)


def run_evaluate(args: argparse.Namespace) -> None:
    from jina.helper import random_port

    from crossmodal.backends import published_results
    from crossmodal.index import stored_ids, stored_settings
    from crossmodal.index.workspace import index_folder
    from crossmodal.modality import IMAGE, MODALITIES
    from serving.jobs.client import SearchClient
    from serving.jobs.evaluation import evaluate_pairs
    from serving.runtime.flows import load_flow, running

    split = args.split or ("test" if args.dataset in ("f8k", "f30k") else None)
    # A workspace of its own, so that the ranking is over exactly this dataset split and nothing else.
    options_key = hashlib.sha1(json.dumps(model_options(args), sort_keys=True).encode()).hexdigest()[:8]
    workspace = args.workspace / "eval" / f"{args.dataset}-{split or 'all'}-{args.model}-{options_key}"
    run_index(args, workspace, split)
    reader = open_dataset(args.dataset, data_dir=args.data_dir, workspace=workspace, split=split)
    pairs = list(itertools.islice(reader, args.num_docs) if args.num_docs else reader)
    settings = settings_for(args, workspace=workspace, host="127.0.0.1", port=random_port(), max_limit=args.depth)
    with running(load_flow("query", settings)):
        client = SearchClient(f"http://127.0.0.1:{settings.port}")
        indexed = set().union(*(stored_ids(index_folder(workspace, modality)) for modality in MODALITIES))
        evaluation = evaluate_pairs(client, pairs, args.depth, indexed)
    stored = stored_settings(index_folder(workspace, IMAGE))
    if stored is None:
        raise ValueError(f"nothing was indexed into {workspace}")
    model_name = stored.model_name
    metrics = evaluation.metrics
    calibration_file = write_calibration(model_name, evaluation.calibration_samples, args)
    published = published_results(model_name, args.dataset)
    metrics.update({"dataset": args.dataset, "split": split or "all", "model": model_name,
                    "published": [row.as_dict() for row in published]})
    output = args.output or workspace / "metrics.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    for direction in ("image_to_text", "text_to_image"):
        m = metrics[direction]
        recalls = "  ".join(f"R@{k} {percent(m[f'R@{k}'])}" for k in DEFAULT_KS)
        print(f"{direction:>14}: {recalls}  medr {m['medr']:g}  meanr {m['meanr']:g}  ({m['queries']} queries)")
    if metrics["images_not_indexed"]:
        print(f"{metrics['images_not_indexed']} photos were not evaluated: they were skipped when indexing")
    print(f"rsum {percent(metrics['rsum'])}; written to {output}")
    if calibration_file:
        print(f"relevance calibration of {model_name} fitted on these queries: {calibration_file}")
    for row in published:
        print(f"published: {row.line()}")


def write_calibration(model_name: str, samples: dict, args: argparse.Namespace) -> Path | None:
    """Fit the model's relevance calibration on the evaluation's queries, into the serving workspace (where the
    query server finds it, before the calibration shipped with the model)."""
    from crossmodal.search.relevance import fit_calibration, save_calibration, workspace_calibration_path

    if not samples:
        return None
    description = f"-t evaluate -d {args.dataset} --split {args.split or 'default'}"
    try:
        calibration = fit_calibration(model_name, samples, description)
    except ValueError as error:  # e.g. too few queries to have both true and false matches
        say(f"no relevance calibration written: {error}")
        return None
    path = workspace_calibration_path(args.workspace, model_name)
    save_calibration(calibration, path)
    return path


def say(message: str) -> None:
    """A progress line for the user, on stderr: stdout carries only results."""
    print(message, file=sys.stderr, flush=True)


def percent(value: float | None) -> str:
    return "unknown" if value is None else f"{value:6.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_output(args.verbose)  # before Jina is imported
    try:
        return run_task(args)
    except KeyboardInterrupt:  # SIGINT, or SIGTERM while a flow runs (serving.runtime.stop_signals)
        print("stopped", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, SearchError, DownloadError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run_download(args: argparse.Namespace) -> None:
    """The dataset of -d (f8k, f30k) and/or the weights of --model (into --models-dir), whichever were named."""
    allow_torch()  # fetching weights may load them to check them
    from crossmodal.backends.flags import fetch_values
    from crossmodal.download import download_dataset, download_model_weights

    if args.dataset in KAGGLE_DATASETS:
        print(download_dataset(args.dataset, args.data_dir, archive=args.archive).report())
    if args.model is not None:
        loaded = download_model_weights(args.model, args.models_dir, **fetch_values(args.model, args))
        flags = ["--model", loaded["model"], *backend_spec(loaded["model"]).flags(loaded["model_options"])]
        print(f"{loaded['model']} weights ready; run with: {shlex.join(flags)}")


def run_task(args: argparse.Namespace) -> int:
    if args.task == "download":
        run_download(args)
        return 0
    if args.task == "index":
        run_index(args, args.workspace, args.split)  # checks the model only when a flow must start
        return 0
    if args.task == "watch":
        run_watch(args)  # checks the folder before the model
        return 0
    if args.task == "query":
        problem = query_flag_problem(args)
        if problem:
            raise ValueError(problem)
        check_indexed(args.workspace)
    if args.task == "query-restful":
        check_port_free(args.host, args.port)
    check_model(args)
    if args.task == "query":
        run_query(args)
    elif args.task == "query-restful":
        run_server(args)
    else:
        run_evaluate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
