"""The ``workbench`` command line: catalog, recording, playing and importing data, optical flow, leak audits,
IDM training, both studies (seed 000 and the seed 002 world models), findings, notebooks and sweeps, the
dashboard and its users, and the demo job. A user's error is one ``error:`` line and exit code 2 (:func:`_guard`)."""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from .cli_options import Option, config_options, lazy_group

#: The commands whose options come from a config class, by group (built on first use, :mod:`.cli_options`).
CONFIG_COMMANDS: dict[str, dict] = {"workbench": {}, "worldmodel": {}}

app = typer.Typer(
    cls=lazy_group(CONFIG_COMMANDS["workbench"]),
    help="Latent Action Workbench: record or import gameplay, compute optical flow, and study\n"
    "whether learned latent actions mean the same thing across games.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Browse the dataset catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
users_app = typer.Typer(help="Dashboard users for `workbench serve --basic-auth users.json`.", no_args_is_help=True)
app.add_typer(users_app, name="users")

SIZE = typer.Option(None, "--size", "-s", help="Catalog size to use (e.g. demo, full); default: the entry's.")
SEED = typer.Option(None, "--seed", help="Recording seed; default: the entry's.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _guard(fn, *args, **kwargs):
    """Run ``fn`` turning a user's error (:data:`~workbench.core.errors.USER_ERRORS`: a
    ``WorkbenchError``, or a bad path) into a one-line message and exit code 2; any other exception
    is a bug and keeps its traceback."""
    from .core.errors import USER_ERRORS

    try:
        return fn(*args, **kwargs)
    except USER_ERRORS as exc:
        _fail(str(exc))


def config_command(group: str, name: str, cls: str, **kwargs):
    """Register command ``name`` of ``group`` with one option per field of the config class ``cls``
    (``"module:Class"``; :func:`~workbench.cli_options.config_options`)."""
    def register(fn):
        CONFIG_COMMANDS[group][name] = config_options(cls, guard=_guard, **kwargs)(fn)
        return CONFIG_COMMANDS[group][name]
    return register


CONFIG_FILE = typer.Option(None, "--config", help="A config YAML; other options override it.")


@contextmanager
def _catalog_warnings():
    """Print each catalog warning (a skipped broken entry or stray store) as one ``warning:`` line."""
    from .data.catalog import CatalogWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CatalogWarning)
        try:
            yield
        finally:
            for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, CatalogWarning)):
                typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
            for w in caught:
                if not issubclass(w.category, CatalogWarning):
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@catalog_app.command("list")
def catalog_list() -> None:
    """List datasets with their games, source and which variants are materialised."""
    with _catalog_warnings():
        _catalog_list()


def _catalog_list() -> None:
    from .data.catalog import catalog_rows, load_catalog

    rows = catalog_rows(_guard(load_catalog))
    header = ("id", "source", "games", "frames (default size)", "materialised")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


@catalog_app.command("show")
def catalog_show(dataset_id: str = typer.Argument(..., help="Dataset id from `workbench catalog list`.")) -> None:
    """Show one entry: its YAML, where it is cached, and a per-game summary when materialised."""
    import yaml

    from .data.catalog import get_entry

    with _catalog_warnings():
        entry = _guard(get_entry, dataset_id)
        typer.echo(yaml.safe_dump(entry.to_dict(), sort_keys=False, allow_unicode=True).rstrip())
        typer.echo(f"\nentry file: {entry.path}")
        for variant in entry.materialised():
            path = entry.store_path(*entry.split_variant(variant))
            typer.echo(f"materialised: {variant} at {path}")
            try:
                _print_summary(path)
            except Exception as exc:  # a damaged store fails anywhere in the codec stack: name it, show the rest
                typer.secho(f"warning: {path}: cannot summarise ({exc})", fg=typer.colors.YELLOW, err=True)


def _materialised(dataset_id: str, size: Optional[str], seed: Optional[int]) -> Path:
    """The store of a materialised catalog dataset, or a one-line error saying how to make it."""
    from .data.catalog import get_entry
    from .data.store import is_complete

    entry = _guard(get_entry, dataset_id)
    path = _guard(entry.store_path, size, seed)
    if not is_complete(path):
        verb = "record" if entry.kind == "record" else "import"
        _fail(f"dataset {dataset_id!r} ({entry.variant(size, seed)}) is not materialised; run `workbench {verb} {dataset_id}` first")
    return path


def _print_summary(path: Path, out: Optional[Path] = None) -> None:
    """Print a store's per-game summary and its warnings (and write it to the CSV ``out``)."""
    from .analysis.summary import summary_report

    text, warnings_ = summary_report(path, out)
    typer.echo(text)
    for line in warnings_:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)


@app.command()
def record(
    dataset_ids: List[str] = typer.Argument(None, help="Catalog ids to record (default: every recorded entry)."),
    size: Optional[str] = SIZE,
    seed: Optional[int] = SEED,
    force: bool = typer.Option(False, "--force", help="Record again even if a complete store exists."),
) -> None:
    """Record catalog datasets by playing the real emulators with the scripted player."""
    from .data.catalog import load_catalog, materialise

    catalog = _guard(load_catalog)
    ids = dataset_ids or [k for k, e in catalog.items() if e.kind == "record"]
    for dataset_id in ids:
        if dataset_id not in catalog:
            _fail(f"unknown dataset {dataset_id!r}; the catalog has: {', '.join(catalog)}")
        path = _guard(materialise, catalog[dataset_id], size=size, seed=seed, force=force)
        typer.echo(f"{dataset_id}: {path}")


@app.command("play")
def play_(
    agent: str = typer.Argument(..., help="random | scripted"),
    game: str = typer.Argument(..., help="A game of a recorded catalog entry (e.g. Enduro, CarRacing, freedoom1_smooth)."),
    episodes: int = typer.Option(1, "--episodes", "-n", help="Episodes to play."),
    seed: int = typer.Option(0, "--seed", help="Seed of the agent's and the emulator's random streams."),
    max_steps: int = typer.Option(1000, "--max-steps", help="Length cap of an episode (steps)."),
    force: bool = typer.Option(False, "--force", help="Play again even if a complete store exists."),
) -> None:
    """Let an agent play a catalog game in the real emulator and store its episodes like a recording."""
    from .play import play
    from .play.session import play_summary

    with _catalog_warnings():
        path = _guard(play, agent, game, episodes=episodes, seed=seed, max_steps=max_steps, force=force)
    done = play_summary(path)
    typer.echo(f"{agent} {game}: {done['steps']} steps, {done['terminated']} terminated,"
               f" {done['truncated']} truncated, return {done['return']:g}")
    typer.echo(str(path))


#: The level table's columns `workbench levels` prints.
LEVEL_COLUMNS = ["agent", "game", "rmst", "curiosity_auc", "coverage", "coverage_kind", "return", "hns_published_pct",
                 "normalisation_valid", "rank_survival", "rank_curiosity", "rank_utility"]


@config_command("workbench", "levels", "workbench.play.levels:LevelsConfig",
                hidden={"games": "given by --set, or --game with --max-steps"}, options={
    "agents": Option(argument=True),
    "episodes": Option(flags=("--episodes", "-n")),
    "reference": Option(parse=lambda v: None if v == "none" else v)})
def levels_(
    fields: dict,
    level_set: str = typer.Option("doom", "--set", help="Level set (workbench/play/level_sets.yaml): doom, atari, "
                                  "mixed, demo."),
    game: Optional[List[str]] = typer.Option(None, "--game", "-g", help="Catalog game(s) instead of a set "
                                             "(repeatable; cap from --max-steps, default 1000)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Cap every game at most this many steps."),
) -> None:
    """Seed 003's levels: agents x games x episodes in the real games (resumable), then the level table
    (Survival RMST, Curiosity magnitude AUC beside ground-truth coverage, Utility return / HNS) and ranks."""
    import pandas as pd

    from .play.levels import levels_config, run_levels

    cfg = _guard(levels_config, level_set, game or (), max_steps, **fields)
    with _catalog_warnings():
        folder = _guard(run_levels, cfg, log=typer.echo)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        table = pd.read_csv(folder / "level_table.csv")
        typer.echo(table[[c for c in LEVEL_COLUMNS if c in table]].round(3).to_string(index=False))
        typer.echo("\n" + pd.read_csv(folder / "ranks.csv").round(3).to_string(index=False))
    typer.echo(f"\nlevels run: {folder}")


@app.command("import")
def import_(
    fmt: str = typer.Argument(..., help="atari_head | vpt | csgo | minari | video_csv"),
    path: str = typer.Argument(..., help="File or folder, relative to $WORKBENCH_IMPORT_ROOT (default: cwd)."),
    dataset_id: str = typer.Option(..., "--id", help="Id of the new catalog entry."),
    game: Optional[List[str]] = typer.Option(None, "--game", help="Game name(s) the files hold."),
    frame_size: Optional[str] = typer.Option(None, help="Resize frames to HxW, e.g. 96x96 (each side 8..1024)."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="Importer parameter key=value (repeatable)."),
    crop: Optional[str] = typer.Option(None, "--crop", help="Cut a HUD off every native frame before resizing,"
                                       " e.g. bottom=12,right=8 (pixels per edge)."),
    force: bool = typer.Option(False, "--force", help="Replace what the id holds (another import, or a broken entry)."),
) -> None:
    """Import a public dataset in its native format as a new catalog entry (the same files and
    settings again reuse the store; other files under a used id need --force)."""
    import yaml

    from .data.catalog import import_dataset

    params = {}
    for item in param or []:
        if "=" not in item:
            _fail(f"--param {item!r}: expected key=value")
        key, value = item.split("=", 1)
        params[key] = yaml.safe_load(value)
    size = None
    if frame_size:
        try:
            size = tuple(int(v) for v in frame_size.lower().split("x"))
        except ValueError:
            size = ()
        if len(size) != 2:
            _fail(f"--frame-size {frame_size!r}: expected HxW, e.g. 96x96")
    if game and "game" not in params and len(game) == 1:
        params["game"] = game[0]
    hud = {}
    if crop:
        try:
            hud["crop"] = {k.strip(): int(v) for k, v in (item.split("=", 1) for item in crop.split(","))}
        except ValueError:
            _fail(f"--crop {crop!r}: expected edge=pixels pairs, e.g. bottom=12,right=8")
    store = _guard(import_dataset, fmt, path, dataset_id, games=game, frame_size=size, params=params, force=force,
                   hud=hud)
    typer.echo(f"{dataset_id}: {store}")
    _print_summary(store)


@app.command()
def flow(
    dataset_id: str = typer.Argument(..., help="Catalog id of a materialised dataset."),
    size: Optional[str] = SIZE,
    seed: Optional[int] = SEED,
    method: str = typer.Option("farneback", help="farneback (seed 000) or dis (fast)."),
    workers: Optional[int] = typer.Option(None, help="Processes (default: all cores)."),
    scheduler: Optional[str] = typer.Option(
        None, help="None: local processes; 'local': a dask LocalCluster; or a dask scheduler address."),
    threshold: str = typer.Option("auto", help="Proxy-label neutral threshold per game: 'auto' (Gaussian-mixture"
                                  " split of the game's unlabeled flow, at most 0.5 px), a percentile like p67,"
                                  " or px/frame."),
) -> None:
    """Optical flow statistics and flow-proxy labels for a dataset, with their agreement."""
    from .flow import compute_flow
    from .flow.labels import parse_threshold

    kind, value = _guard(parse_threshold, threshold)  # before the flow is computed
    thr = value if kind == "px" else threshold
    path = _materialised(dataset_id, size, seed)
    _guard(compute_flow, path, method=method, workers=workers, scheduler=scheduler, threshold=thr)
    _print_summary(path)


@app.command()
def summary(
    dataset_id: str = typer.Argument(..., help="Catalog id of a materialised dataset."),
    size: Optional[str] = SIZE,
    seed: Optional[int] = SEED,
    csv: Optional[Path] = typer.Option(None, help="Also write the table to this CSV file."),
) -> None:
    """Per-game frames, label balance and flow-proxy agreement with the true labels."""
    _guard(_print_summary, _materialised(dataset_id, size, seed), csv)


@app.command()
def audit(
    dataset_id: str = typer.Argument(..., help="Catalog id of a materialised dataset."),
    size: Optional[str] = SIZE,
    seed: Optional[int] = SEED,
    head: Optional[List[str]] = typer.Option(None, "--head", help="Label(s) to audit (default: steer)."),
) -> None:
    """Leak audit: can one frame, or one region of it, predict a label as well as motion does?

    Prints per game and head the motion signal, the whole-frame single-frame probes and the
    flagged regions, then each region's probe accuracy; exits with code 1 when a flagged region
    is not accepted by the entry (``accept_cues``).
    """
    import pandas as pd

    from .analysis.leaks import audit_regions, audit_verdict, cached_audit
    from .data.catalog import get_entry
    from .data.store import open_dataset

    path = _materialised(dataset_id, size, seed)
    table = _guard(cached_audit, path, open_dataset(path), accepted=get_entry(dataset_id).accepted_cues(),
                   **({"heads": tuple(head)} if head else {}))
    verdict = audit_verdict(table)
    regions = audit_regions(table)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 500,
                           "display.max_colwidth", 80, "display.float_format", "{:.3f}".format):
        typer.echo(verdict.to_string(index=False))
        typer.echo("\n" + regions.to_string())
    if verdict.leak.any():
        typer.secho(f"leak: {', '.join(verdict[verdict.leak].game)} — a single frame shows the label as well as motion",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command()
def demo(
    size: str = typer.Option("demo", "--size", "-s", help="Catalog size to record and study."),
    seed: Optional[int] = SEED,
    workers: Optional[int] = typer.Option(None, help="Processes for optical flow (default: all cores)."),
    run_study: bool = typer.Option(True, "--study/--no-study", help="Also run every study (seed 000, seed 002) and"
                                   " write their reports."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="End by serving the dashboard on localhost."),
    port: int = typer.Option(5006, "--port", help="Dashboard port."),
) -> None:
    """The main job: record the built-in catalog, compute flow, print per-game summaries, run every
    study (seed 000's cross-game IDM study, seed 002's world-model batch run; reports + figures),
    and serve the dashboard on 127.0.0.1. A step that fails is reported and the others go on."""
    from .main_job import main_steps, run_steps

    failed = run_steps(main_steps(size, seed, workers, studies=run_study), log=typer.echo,
                       error=lambda text: typer.secho(text, fg=typer.colors.RED, err=True))
    if failed:
        typer.secho(f"\nfailed: {'; '.join(failed)} (errors above); the dashboard shows the others",
                    fg=typer.colors.RED, err=True)
    if serve_after:
        typer.secho("\n== dashboard (Ctrl-C to stop)", bold=True)
        serve(address="127.0.0.1", port=port, origin=None, basic_auth=None, oauth_provider=None, threads=4, show=False)
    if failed:
        raise typer.Exit(code=1)


@config_command("workbench", "train", "workbench.methods.idm.config:TrainConfig",
                hidden={"name": "the preset argument names the config"}, options={
    "datasets": Option(flags=("--dataset", "-d")),
    "size": Option(flags=("--size", "-s")),
    "games": Option(flags=("--game", "-g"))})
def train_(
    fields: dict,
    preset: str = typer.Argument(..., help="single | joint_v1 | joint_v2 | joint_v3 | finetune_k | finetune_pct"),
    finetune_game: Optional[str] = typer.Option(None, help="Game to calibrate on (finetune_* presets)."),
    config: Optional[Path] = CONFIG_FILE,
) -> None:
    """Train an inverse dynamics model into the model library (resumes an interrupted run)."""
    from .methods.idm import train
    from .methods.idm.config import config_from_options

    cfg = _guard(config_from_options, preset, fields, finetune_game, from_file=config is not None)
    result = _guard(train, cfg)
    typer.echo(f"model {result.model_id} ({'finished' if result.finished else 'checkpointed'} at step {result.step})")
    for head, games in (result.card.metrics.get("test", {}) if result.card else {}).items():
        scores = ", ".join(f"{g} {v['balanced_accuracy']:.3f}" for g, v in games.items())
        typer.echo(f"  test balanced accuracy · {head}: {scores}")


@app.command("models")
def models_() -> None:
    """List the model library: id, preset, datasets and steps; a warning line for each broken card."""
    from .engine.library import read_library

    cards, broken = read_library()
    for model_id, card in cards.items():
        cfg = card.config
        typer.echo(f"{model_id}  [{cfg.get('name')}] datasets={cfg.get('datasets')} steps={card.steps}")
    for line in broken:
        typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)


@config_command("workbench", "study", "workbench.methods.idm.study:StudyConfig",
                options={"size": Option(flags=("--size", "-s")), "domains": Option(flags=("--domain",))})
def study(fields: dict) -> None:
    """Seed 000's cross-game IDM study on the catalog; writes report.md and figures."""
    from .methods.idm.study import StudyConfig, run_study

    _report(_guard(run_study, _guard(StudyConfig, **fields)))


def _report(folder: Path) -> None:
    """Write a finished study's report and print why domains were refused, its headline numbers and where it is."""
    from .study.results import report_lines

    typer.echo("\n".join(report_lines(folder)))


@app.command()
def serve(
    address: str = typer.Option("127.0.0.1", "--address", help="Interface to bind; anything but loopback needs auth."),
    port: int = typer.Option(5006, "--port", help="Port (0: a free one)."),
    origin: Optional[str] = typer.Option(None, "--origin", help="Exact host:port browsers use, if not address:port."),
    basic_auth: Optional[Path] = typer.Option(None, "--basic-auth", help="Users file of password hashes (made with"
                                              " `workbench users add`); or one shared password in WORKBENCH_PASSWORD."),
    oauth_provider: Optional[str] = typer.Option(None, "--oauth-provider", help="e.g. github; secrets from"
                                                 " PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET, PANEL_COOKIE_SECRET."),
    threads: int = typer.Option(4, "--threads", help="Worker threads for the dashboard's callbacks."),
    show: bool = typer.Option(False, "--show", help="Open a browser."),
) -> None:
    """Serve the Panel dashboard (studies, models, catalog) at http://127.0.0.1:5006/."""
    from .app.server import ServeError, plan
    from .app.server import serve as run_server

    try:
        config = plan(address=address, port=port, origin=origin, basic_auth=basic_auth and str(basic_auth),
                      oauth_provider=oauth_provider, threads=threads)
        run_server(config, show=show)
    except ServeError as exc:
        _fail(str(exc))


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="Login name (no spaces)."),
    file: Path = typer.Option(..., "--file", "-f", help="Users file for `workbench serve --basic-auth` (created if"
                              " missing)."),
) -> None:
    """Add a dashboard user, or set a new password: asks for it twice and stores only its salted hash."""
    from .app.users import add_user, check_password

    password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    _guard(check_password, password)
    new = _guard(add_user, file, name, password)
    typer.echo(f"{'added' if new else 'updated'} {name} in {file}")


@users_app.command("remove")
def users_remove(
    name: str = typer.Argument(..., help="Login name."),
    file: Path = typer.Option(..., "--file", "-f", help="Users file."),
) -> None:
    """Remove a dashboard user (a running server refuses their next login; a restart ends open ones)."""
    from .app.users import remove_user

    _guard(remove_user, file, name)
    typer.echo(f"removed {name} from {file}")


def _notebook_params(args: List[str]) -> dict:
    """``-p KEY VALUE`` pairs (papermill's syntax); values are read as YAML, and ``None`` as None."""
    import yaml

    params, rest = {}, list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter") or len(rest) < 2:
            _fail(f"unexpected argument {flag!r}: give notebook parameters as -p KEY VALUE")
        key, value = rest.pop(0), rest.pop(0)
        try:
            params[key] = None if value == "None" else yaml.safe_load(value)
        except yaml.YAMLError:
            _fail(f"-p {key}: {value!r} is not valid YAML (quote strings that contain ':' or brackets)")
    return params


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_(
    ctx: typer.Context,
    notebook: str = typer.Argument(..., help="A notebook of notebooks/ (02_train_idm, train_idm or 02) or an .ipynb path."),
    output_dir: Optional[Path] = typer.Option(None, help="Where to keep the executed notebook of a run that names no"
                                              " model or study (default <studies>/runs)."),
) -> None:
    """Run a notebook headless with papermill: `workbench run 02_train_idm -p preset joint_v1 -p size tiny`.

    Parameters are -p KEY VALUE (repeatable), each value read as YAML as papermill does.

    The executed notebook is kept as the run's record, next to the model card when the run made or used a model.
    """
    from .notebooks import run_notebook

    params = _notebook_params(ctx.args)
    path = _guard(run_notebook, notebook, params, output_dir)
    for key, value in json.loads(path.with_suffix(".json").read_text())["result"].items():
        typer.echo(f"  {key}: {value}")
    typer.echo(f"executed notebook: {path}")


@app.command()
def sweep(spec: Path = typer.Argument(..., help="Sweep YAML: notebook, parameters, grid (see notebooks/sweeps/).")) -> None:
    """Run a notebook once per combination of a parameter grid; a failing run is reported and the rest go on."""
    import pandas as pd

    from .notebooks import run_sweep

    table = _guard(run_sweep, spec)
    shown = [c for c in table.columns if "/" not in c and c not in ("output", "error")]
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.float_format", "{:.3f}".format):
        typer.echo(table[shown].to_string())
    for i, run in table.iterrows():
        typer.echo(f"[{i}] {run['status']}: {run['output']}" + (f"\n    {run['error']}" if pd.notna(run["error"]) else ""))
    typer.echo(f"table: {table.attrs['path']}")
    failed = int((table["status"] != "ok").sum())
    if failed:
        typer.secho(f"{failed} of {len(table)} runs failed", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


worldmodel_app = typer.Typer(cls=lazy_group(CONFIG_COMMANDS["worldmodel"]), no_args_is_help=True,
                             help="Latent action world models (seed 002): train, control, evaluate, plan, batch runs.")
app.add_typer(worldmodel_app, name="worldmodel")


@config_command("worldmodel", "train", "workbench.methods.worldmodel.config:WorldModelConfig", options={
    "family": Option(flags=("--family", "-f")),
    "datasets": Option(flags=("--dataset", "-d"), default=["first_person"]),
    "size": Option(flags=("--size", "-s"))})
def wm_train(
    fields: dict,
    knob: Optional[float] = typer.Option(None, "--knob", help="Capacity knob: l1 (sparse), beta (noisy),"
                                         " codebook_size (discrete); default the paper's."),
    config: Optional[Path] = CONFIG_FILE,
) -> None:
    """Train (or resume) a latent-action world model, and its frame autoencoder if needed."""
    from .engine.library import load_card
    from .methods.worldmodel import train_world_model
    from .methods.worldmodel.config import WorldModelConfig, knob_fields

    knobs = _guard(knob_fields, fields.get("family", WorldModelConfig.family), knob)
    cfg = _guard(WorldModelConfig.from_dict, {**fields, **knobs})
    model_id = _guard(train_world_model, cfg)
    metrics = load_card(model_id).metrics.get("test", {})
    typer.echo(f"model {model_id}")
    if metrics:
        typer.echo("  test one-step error: " + ", ".join(f"{k} latent {v:.4f}" for k, v in metrics.items()))


@config_command("worldmodel", "controller", "workbench.methods.worldmodel.config:ControllerConfig", options={
    "world_model": Option(argument=True, default=...), "action_space": Option(default="motion")})
def wm_controller(fields: dict) -> None:
    """Train a controller from real actions to a world model's latent actions."""
    from .engine.library import load_card
    from .methods.worldmodel import ControllerConfig, train_controller

    model_id = _guard(train_controller, _guard(ControllerConfig, **fields))
    test = load_card(model_id).metrics.get("test", {})
    typer.echo(f"controller {model_id}" + (f"  test unexplained variance {test['unexplained']:.3f}" if test else ""))


@worldmodel_app.command("eval")
def wm_eval(
    models: List[str] = typer.Argument(..., help="World model ids."),
    table: str = typer.Option("health", "--table", help="health | capacity | leakage | cycle"),
    clips: int = typer.Option(128, "--clips", help="Held-out clips per model."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the table here."),
) -> None:
    """Evaluate world models on held-out clips and print the table."""
    from .core.paths import atomic_write
    from .methods.worldmodel.health import evaluation_table

    result = _guard(evaluation_table, table, models, n_clips=clips)
    typer.echo(result.to_string(index=False))
    if csv:
        atomic_write(csv, lambda tmp: result.to_csv(tmp, index=False))


@worldmodel_app.command("plan")
def wm_plan(
    world_model: str = typer.Argument(..., help="Latent world model id."),
    controller: Optional[List[str]] = typer.Option(None, "--controller", help="Controller id(s) (motion actions)."),
    action_model: Optional[str] = typer.Option(None, "--action-model", help="Action-conditioned world model id."),
    episodes: int = typer.Option(32, "--episodes", help="Held-out episodes."),
    seed: int = typer.Option(0, "--seed", help="Episode draw and CEM seed."),
) -> None:
    """CEM goal-reaching planning on held-out first-person clips; prints mean errors per method."""
    from .methods.worldmodel.report import planning_table
    from .methods.worldmodel import planning_eval

    plans = _guard(planning_eval, world_model, controller or [], action_model, n_episodes=episodes, seed=seed)
    typer.echo(planning_table(plans.assign(model=world_model)).to_string())


@config_command("worldmodel", "study", "workbench.methods.worldmodel.study:WorldModelStudyConfig", options={
    "dataset": Option(flags=("--dataset", "-d")),
    "size": Option(flags=("--size", "-s")),
    "sweeps": Option(flags=("--sweep",), type=Optional[List[str]],
                     parse="workbench.methods.worldmodel.study:parse_sweeps"),
    "ood_train_games": Option(flags=("--ood-train",), type=Optional[List[str]],
                              parse="workbench.methods.worldmodel.study:parse_ood_games")})
def wm_study(fields: dict) -> None:
    """Seed 002 as one batch run: capacity sweep, controllers, Tables 1, 2, S1, S2, out of domain; writes report.md."""
    from .methods.worldmodel.study import WorldModelStudyConfig, run_worldmodel_study

    _report(_guard(run_worldmodel_study, _guard(WorldModelStudyConfig, **fields)))


findings_app = typer.Typer(help="Quotable findings: both studies over several seeds, and their claims ledgers.",
                            no_args_is_help=True)
app.add_typer(findings_app, name="findings")


def _seeds(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        _fail(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2")


@findings_app.command("run")
def findings_run(
    size: str = typer.Option("quotable", "--size", "-s", help="Study size (quotable: early stopping, ≥ 3 seeds)."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds (≥ 3 for intervals over seeds)."),
    study: Optional[list[str]] = typer.Option(None, "--study", help="Only this paper's study (seed000, seed002; "
                                              "repeatable; default both)."),
    rerun: Optional[list[str]] = typer.Option(None, "--rerun", help="Run this finished stage again in every seed "
                                              "(e.g. evaluate; repeatable; needs one --study); models are reused."),
) -> None:
    """Run every seed's seed 000 study and seed 002 batch run, skipping finished ones; a killed run
    continues where it stopped when started again. Then `workbench findings write`."""
    from .study.findings import STUDIES, run_findings

    unknown = sorted(set(study or ()) - set(STUDIES))
    if unknown:
        _fail(f"--study {', '.join(unknown)}: unknown; studies: {', '.join(STUDIES)}")
    _guard(run_findings, size, _seeds(seeds), studies=tuple(study or STUDIES), log=typer.echo,
           rerun=tuple(rerun or ()))


@findings_app.command("write")
def findings_write(
    size: str = typer.Option("quotable", "--size", "-s", help="Study size whose ledgers to write."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds of the replicates."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder (default docs/findings of the checkout)."),
) -> None:
    """Regenerate docs/findings/seed000.md and seed002.md from the studies' claims ledgers."""
    from .study.findings import FINDINGS_DIR, write_findings

    for path in _guard(write_findings, size, _seeds(seeds), out or FINDINGS_DIR):
        typer.echo(f"wrote {path}")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="workbench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
