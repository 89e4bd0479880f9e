"""Retraining time: tradebot's full and emergency retrains, and its XGBoost member vs a plain
Optuna + xgboost loop on the same rows.

What the issue asks: on the default config (10 symbols x 60 trading days of 15-minute bars, 2
CPU cores) an emergency retrain takes <= 10 min and a full retrain <= 45 min.

Set-up (not timed): a home with a TOML config (the defaults, except ``symbols`` and
``[data] sessions``), the synthetic market ingested (``ingest_synthetic``: bars, news, posts,
sentiment scores) and the feature rows built (``build_features``), in a temporary directory or
in ``--home DIR`` (reused: ingest and features are skipped when the feature rows are there).

Timed (wall clock, ``time.perf_counter``), each in a fresh MLflow + Optuna home of its own
(``<home>/runs/<stamp>-<run>``; its MLflow and Optuna databases are created before the timer
starts, as in a home that has trained before) sharing the project database:

(a) ours, emergency:   ``train_and_register(..., mode="emergency")``
(b) ours, full:        ``train_and_register(..., mode="full")``
(c) ours, XGBoost:     ``train_and_register(..., mode="full", models=["xgboost"])``
(d) peer:              what a FreqAI / Qlib user would script: the same labelled frame
                       (``load_feature_frame``, rows before the cut-off with a label), the same
                       ``holdout_split`` and ``walk_forward_splits`` with the same embargo,
                       ``optuna.create_study(TPESampler(seed))`` in memory, the same search
                       space ranges and trial count as (c) (trial 0 the configured defaults, as
                       ours enqueues), raw ``xgb.train`` per fold, mean fold AUC, a final fit on
                       all development rows. No MLflow, no pruning, no backtest, no gate.

All of (a)-(c) use ``train_end`` = the open of the first replayed session (as the train flow
computes it) and ``store=rt.feature_store()``, so the test-window backtest through the live
trade cycle is timed as in real training. (d) runs right before and right after (c), so a
change of load on the machine shows as two different peer times (xgboost's OpenMP threads
slow down badly when another process takes one of 2 cores). Ratio = (c) / the mean of the
(d) seconds, with the range over the two (above 1: ours is slower). If (c) stops at its
time budget with fewer trials, only the run after it, with that many trials, counts.

Check: trial 0 (the defaults) has the same parameters in (c) and (d), so its mean fold AUC must
be equal (1e-9); otherwise MISMATCH and exit status 1. Trials with identical parameters in
both studies are compared too and reported. Exit status 1 also when a timed mode misses its
target (the targets are for the default size; smaller runs are only smoke tests).

    .venv/bin/python bench/train.py                           # 10 x 60, both modes, ~30+ min
    .venv/bin/python bench/train.py --symbols 3 --sessions 15 --tiny   # smoke run, ~1 min
    .venv/bin/python bench/train.py --modes emergency --skip-peer
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from features_vs_talib import symbol_names
from sklearn.metrics import roc_auc_score
from sqlalchemy import func, select

from tradebot.features.store import load_feature_frame
from tradebot.flows.runtime import Runtime, runtime
from tradebot.kernel.home import Home
from tradebot.kernel.schema import FeatureRow
from tradebot.kernel.settings import TradebotSettings
from tradebot.models import registry
from tradebot.models.families import members
from tradebot.models.validation import holdout_split, walk_forward_splits
from tradebot.pipelines.dataset import build_features
from tradebot.pipelines.ingest import ingest_synthetic
from tradebot.pipelines.train import TrainResult, train_and_register
from tradebot.pipelines.tuning import embargo_bars
from tradebot.pipelines.universe import data_window

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.kit
from tests.kit.config import TINY_NETS_TOML  # the nets the tests train

TARGETS_S = {"emergency": 10 * 60.0, "full": 45 * 60.0}
DEFAULT_SYMBOLS_N, DEFAULT_SESSIONS = 10, 60
KEY_COLUMNS = ("symbol", "ts", "label", "forward_return")

# --tiny: the shrunken nets of tests/kit/config.py and small budgets (smoke runs only).
TINY_TOML = """
[optuna]
n_trials = 3
emergency_trials = 2
n_splits = 2
[model.xgboost]
n_estimators = 60
""" + TINY_NETS_TOML


def write_config(home: Path, symbols: list[str], sessions: int, tiny: bool) -> Path:
    """The default settings except the home, ``symbols`` and ``[data] sessions``."""
    path = home / "bench-train.toml"
    quoted = ", ".join(f'"{s}"' for s in symbols)
    text = (f'home = "{home.as_posix()}"\nsymbols = [{quoted}]\n'
            f"[data]\nsessions = {sessions}\n")
    path.write_text(text + (TINY_TOML if tiny else ""))
    return path


# --- set-up -------------------------------------------------------------------------------------

def utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def stored_symbols(rt: Runtime, version: str) -> dict[str, pd.Timestamp]:
    """The newest feature row of ``version`` per stored symbol."""
    with rt.db.session() as session:
        rows = session.execute(
            select(FeatureRow.symbol, func.max(FeatureRow.ts))
            .where(FeatureRow.feature_set_version == version)
            .group_by(FeatureRow.symbol)).all()
    return {symbol: utc(ts) for symbol, ts in rows}


def set_up(rt: Runtime, symbols: list[str]) -> str:
    """Ingest and build features unless every symbol has rows up to the last session (the
    first session has few or none: the indicators' warm-up)."""
    store = rt.feature_store()
    window = data_window(rt.settings, rt.clock)
    last_open = utc(rt.clock.open_close(window.sessions[-1])[0])
    newest = stored_symbols(rt, store.version)
    # Training reads every stored row of the feature set, whatever the symbols.
    extra = sorted(set(newest) - set(symbols))
    if extra or any(ts > utc(rt.clock.open_close(window.sessions[-1])[1])
                    for ts in newest.values()):
        raise SystemExit(f"{rt.home.root} holds feature rows of other symbols ({extra}) or "
                         "sessions than asked for: use a new --home (or the same --symbols "
                         "and --sessions as when it was built)")
    if all(s in newest and newest[s] >= last_open for s in symbols):
        return f"feature rows of {store.version} already stored: ingest and features skipped"
    t0 = time.perf_counter()
    ingest = ingest_synthetic(rt.db, rt.settings, rt.clock, list(window.sessions), symbols,
                              rt.now(), rt.scorer())
    feats = build_features(rt.db, rt.feature_store(), symbols, rt.now())
    return (f"ingested {ingest.bars:,} minute bars, {ingest.articles:,} articles, "
            f"{ingest.posts:,} posts ({ingest.scored:,} scored by {store.scorer}); "
            f"{feats.rows:,} feature rows of {feats.feature_set_version}, "
            f"{len(feats.features)} features ({time.perf_counter() - t0:.0f} s, not timed)")


def warm_up() -> None:
    """Import what training imports on demand, so no timed run pays it for the others."""
    for module in ("tradebot.models.lstm", "tradebot.models.transformer", "torch"):
        importlib.import_module(module)


def run_home(base: Path, stamp: str, label: str, database_url: str,
             settings: TradebotSettings) -> Home:
    """A fresh MLflow + Optuna home sharing the project database; its MLflow and Optuna
    databases are created here (not timed), as they exist in a home that trained before."""
    home = Home(root=base / "runs" / f"{stamp}-{label}", database_url=database_url)
    home.ensure()
    registry.configure(home.mlflow_tracking_uri, home.mlflow_artifacts, settings.model.experiment)
    optuna.storages.RDBStorage(home.optuna_url)
    return home


# --- timed runs ---------------------------------------------------------------------------------

@dataclass
class Trials:
    """Progress of one run: per member, the trials reported and when the last one finished."""

    label: str
    start: float
    done: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_at: dict[str, float] = field(default_factory=dict)

    def __call__(self, member: str, done: int, total: int) -> None:
        now = time.perf_counter() - self.start
        if self.done.get(member, (0, 0))[0] == done:
            return
        self.done[member] = (done, total)
        self.last_at[member] = now
        print(f"  [{self.label}] {member}: trial {done}/{total} at {now:7.1f} s",
              file=sys.stderr, flush=True)


@dataclass
class OursRun:
    label: str
    mode: str
    seconds: float
    result: TrainResult
    trials: Trials
    studies: dict[str, optuna.Study]
    load: float  # 1-minute load average at the start


def time_ours(rt: Runtime, base: Path, stamp: str, label: str, mode: str,
              models: list[str] | None, train_end: datetime) -> OursRun:
    home = run_home(base, stamp, label, rt.home.database_url, rt.settings)
    store = rt.feature_store()
    print(f"timing ours: {label} (train_and_register mode={mode!r}"
          f"{f', models={models}' if models else ''}) in {home.root}", file=sys.stderr,
          flush=True)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    trials = Trials(label, t0)
    result = train_and_register(rt.db, home, rt.settings, train_end, rt.now(), trials,
                                feature_version=store.version, store=store, mode=mode,
                                models=models)
    seconds = time.perf_counter() - t0
    studies = {}
    for summary in optuna.get_all_study_summaries(home.optuna_url):
        member = summary.study_name.rsplit("-", 1)[-1]
        studies[member] = optuna.load_study(study_name=summary.study_name,
                                            storage=home.optuna_url)
    return OursRun(label, mode, seconds, result, trials, studies, load)


def search_space(trial: optuna.Trial, n_estimators: int, max_depth: int) -> dict[str, Any]:
    """Written out by hand, with the ranges of ``XGBDirectionModel.search_space``."""
    return {
        "max_depth": trial.suggest_int("max_depth", 2, max(6, max_depth)),
        "eta": trial.suggest_float("eta", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, max(100, n_estimators)),
    }


@dataclass
class PeerRun:
    label: str
    seconds: float
    tuning_seconds: float
    study: optuna.Study
    n_dev: int
    n_features: int
    load: float  # 1-minute load average at the start


def time_peer(rt: Runtime, train_end: datetime, n_trials: int, label: str) -> PeerRun:
    """Optuna + raw xgboost on the rows, folds and trial count of our XGBoost member."""
    print(f"timing {label}: Optuna + raw xgboost, {n_trials} trials", file=sys.stderr,
          flush=True)
    settings = rt.settings
    opt, base = settings.optuna, settings.model.xgboost
    fixed = {"objective": "binary:logistic", "eval_metric": "auc", "tree_method": "hist",
             "seed": opt.seed, "nthread": base.n_jobs}
    defaults = {"max_depth": base.max_depth, "eta": base.learning_rate,
                "n_estimators": base.n_estimators, "subsample": 1.0, "colsample_bytree": 1.0,
                "min_child_weight": 1.0, "lambda": 1.0}
    version = rt.feature_store().version
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with rt.db.session() as session:
        frame = load_feature_frame(session, version, end=train_end)
    frame = frame.dropna(subset=["label"]).reset_index(drop=True)
    features = [c for c in frame.columns if c not in KEY_COLUMNS]
    embargo = embargo_bars(settings)
    dev = frame.iloc[holdout_split(frame["ts"], opt.test_fraction, embargo).train]
    folds = walk_forward_splits(dev["ts"], opt.n_splits, embargo)
    x, y = dev[features].to_numpy(float), dev["label"].to_numpy(int)

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, base.n_estimators, base.max_depth)
        rounds = params.pop("n_estimators")
        aucs = []
        for fold in folds:
            booster = xgb.train({**fixed, **params},
                                xgb.DMatrix(x[fold.train], label=y[fold.train]),
                                num_boost_round=rounds)
            prob = booster.predict(xgb.DMatrix(x[fold.valid]))
            aucs.append(roc_auc_score(y[fold.valid], prob))
        return float(np.mean(aucs))

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=opt.seed))
    study.enqueue_trial(defaults)
    progress = Trials(label, t0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n_trials,
                   callbacks=[lambda s, _t: progress("xgboost", len(s.trials), n_trials)])
    tuning = time.perf_counter() - t0
    best = dict(study.best_params)
    rounds = best.pop("n_estimators")
    xgb.train({**fixed, **best}, xgb.DMatrix(x, label=y), num_boost_round=rounds)
    return PeerRun(label, time.perf_counter() - t0, tuning, study, len(dev), len(features),
                   load)


def compare_trials(ours: optuna.Study, peer: optuna.Study) -> tuple[bool, int, int, float]:
    """(trial 0 equal, trials with the same parameters completed in both, of those equal,
    largest |AUC difference|)."""
    done = optuna.trial.TrialState.COMPLETE
    peer_by_number = {t.number: t for t in peer.trials}
    same = equal = 0
    worst = 0.0
    first_equal = False
    for t in ours.trials:
        p = peer_by_number.get(t.number)
        if p is None or t.state != done or p.state != done or t.params != p.params:
            continue
        same += 1
        diff = abs(float(t.value) - float(p.value))
        worst = max(worst, diff)
        equal += diff <= 1e-9
        if t.number == 0:
            first_equal = diff <= 1e-9
    return first_equal, same, equal, worst


# --- output -------------------------------------------------------------------------------------

def fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, spec)


def study_counts(study: optuna.Study) -> str:
    states = pd.Series([t.state.name.lower() for t in study.trials]).value_counts()
    return ", ".join(f"{n} {s}" for s, n in states.items())


def print_ours(run: OursRun) -> None:
    r = run.result
    target = TARGETS_S.get(run.mode)
    verdict = ("" if target is None or run.label.startswith("xgboost")
               else f"; target <= {target / 60:.0f} min: "
               f"{'PASS' if run.seconds <= target else 'FAIL'}")
    print(f"\n{run.label}: {run.seconds:.1f} s = {run.seconds / 60:.2f} min{verdict} "
          f"(load average {run.load:.2f} at its start)")
    print(f"  {r.model_name} v{r.version}: {'promoted' if r.promoted else 'not promoted'} "
          f"({r.gate_reason})")
    print(f"  dev rows {r.n_dev:,}, test rows {r.n_test:,}, {len(r.features)} features; "
          f"test AUC {fmt(r.metrics.get('test_auc'))}, bt_sharpe "
          f"{fmt(r.metrics.get('bt_sharpe'), '.2f')}, bt_total_return "
          f"{fmt(r.metrics.get('bt_total_return'))}")
    if run.trials.last_at:
        after = run.seconds - max(run.trials.last_at.values())
        print(f"  after the last trial: {after:.1f} s (refits, test-window evaluation, MLflow "
              "logging and registration, test-window backtest, gate)")
    for name, m in r.member_metrics.items():
        study = run.studies.get(name)
        last = run.trials.last_at.get(name)
        print(f"  {name:<12} weight {r.weights.get(name, 0.0):.3f}  cv AUC "
              f"{fmt(m.get('cv_auc'))}  test AUC {fmt(m.get('test_auc'))}  trials: "
              f"{study_counts(study) if study else 'n/a'}; last trial done at "
              f"{fmt(last, '.1f')} s")


def cv_text(run: OursRun) -> str:
    return ", ".join(f"{n} {fmt(m.get('cv_auc'), '.3f')}"
                     for n, m in run.result.member_metrics.items())


def weights_text(run: OursRun) -> str:
    return ", ".join(f"{n} {w:.2f}" for n, w in run.result.weights.items())


def ratio_text(xgb_run: OursRun, peers: list[PeerRun]) -> str:
    """Ours / the mean peer time, with the range over the peer runs."""
    ratios = [xgb_run.seconds / p.seconds for p in peers]
    mean = xgb_run.seconds / float(np.mean([p.seconds for p in peers]))
    return f"{mean:.2f}" + (f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else "")


def markdown(runs: list[OursRun], peers: list[PeerRun], xgb_run: OursRun | None) -> str:
    lines = ["| run | seconds | minutes | target | result | test AUC | bt_sharpe | weights | "
             "cv AUC per member |", "|---|---:|---:|---|---|---:|---:|---|---|"]
    for run in runs:
        target = TARGETS_S[run.mode]
        m = run.result.metrics
        lines.append(f"| ours, {run.mode} | {run.seconds:.1f} | {run.seconds / 60:.2f} | "
                     f"<= {target / 60:.0f} min | {'PASS' if run.seconds <= target else 'FAIL'}"
                     f" | {fmt(m.get('test_auc'))} | {fmt(m.get('bt_sharpe'), '.2f')} | "
                     f"{weights_text(run)} | {cv_text(run)} |")
    if xgb_run is not None:
        m = xgb_run.result.metrics
        lines.append(f"| ours, XGBoost member only (full) | {xgb_run.seconds:.1f} | "
                     f"{xgb_run.seconds / 60:.2f} | — | — | {fmt(m.get('test_auc'))} | "
                     f"{fmt(m.get('bt_sharpe'), '.2f')} | — | {cv_text(xgb_run)} |")
    for peer in peers:
        lines.append(f"| {peer.label}, Optuna + xgboost | {peer.seconds:.1f} | "
                     f"{peer.seconds / 60:.2f} | — | — | — | — | — | "
                     f"xgboost {peer.study.best_value:.3f} |")
    if peers and xgb_run is not None:
        lines.append(f"| **ratio ours/peer (XGBoost)** | **{ratio_text(xgb_run, peers)}** | "
                     "| | | | | | |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS_N,
                   help="number of symbols: the six defaults, GOOGL, TSLA, SYM08, ... "
                   f"(default {DEFAULT_SYMBOLS_N})")
    p.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS,
                   help=f"[data] sessions (default {DEFAULT_SESSIONS})")
    p.add_argument("--modes", default="full,emergency",
                   help="timed modes, comma-separated: full, emergency, or both (default); "
                   "empty for none")
    p.add_argument("--skip-peer", action="store_true",
                   help="skip (c) ours' XGBoost member alone and (d) the peer")
    p.add_argument("--tiny", action="store_true",
                   help="shrink nets and trial counts like tests/kit/config.py (smoke runs)")
    p.add_argument("--home", type=Path, default=None,
                   help="home directory to create or reuse (default: a temporary directory, "
                   "removed at the end unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the temporary home")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in TARGETS_S]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}: use full and/or emergency")
    modes.sort(key=lambda m: m != "emergency")
    base = (args.home or Path(tempfile.mkdtemp(prefix="tradebot-bench-train-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    symbols = symbol_names(args.symbols)
    try:
        return run(args, base, symbols, modes)
    finally:
        if args.home is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"home kept: {base}")


def run(args: argparse.Namespace, base: Path, symbols: list[str], modes: list[str]) -> int:
    load_start = os.getloadavg()
    config = write_config(base, symbols, args.sessions, args.tiny)
    rt = runtime(str(config))
    settings = rt.settings
    window = data_window(settings, rt.clock)
    print(f"set-up in {base}: {len(symbols)} symbols ({', '.join(symbols)}) x "
          f"{len(window.sessions)} sessions ({window.sessions[0]}..{window.sessions[-1]}), "
          f"config {config.name}{' (--tiny)' if args.tiny else ''}", file=sys.stderr, flush=True)
    setup_note = set_up(rt, symbols)
    print(setup_note, file=sys.stderr, flush=True)
    warm_up()
    train_end, _ = rt.clock.open_close(window.replay[0])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")

    runs = [time_ours(rt, base, stamp, m, m, None, train_end) for m in modes]
    xgb_run, peers, budget_note = None, [], ""
    if not args.skip_peer:
        # The peer runs right before and right after ours' XGBoost member, so a change of load
        # on the machine shows up as two different peer times.
        budget = members(settings, ["xgboost"])[0].n_trials(emergency=False)
        peers.append(time_peer(rt, train_end, budget, "peer (before)"))
        xgb_run = time_ours(rt, base, stamp, "xgboost-only", "full", ["xgboost"], train_end)
        # Same trial count as ours ran (fewer than the budget if it hit optuna.timeout_seconds).
        n_trials = len([t for t in xgb_run.studies["xgboost"].trials if t.state.is_finished()])
        if n_trials < budget:
            peers.clear()  # the run before did more trials than ours: not comparable
            budget_note = (f"NOTE ours' XGBoost study stopped at its time budget "
                           f"(optuna.timeout_seconds = {settings.optuna.timeout_seconds:.0f} s) "
                           f"after {n_trials} of {budget} trials; the peer ran the same "
                           f"{n_trials}, after ours only")
        peers.append(time_peer(rt, train_end, n_trials, "peer (after)"))
    load_end = os.getloadavg()

    opt = settings.optuna
    print()
    print(f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"{len(os.sched_getaffinity(0))} usable; {platform.system()} {platform.release()}; "
          f"Python {platform.python_version()}, xgboost {xgb.__version__}, optuna "
          f"{optuna.__version__}, mlflow {mlflow.__version__}, torch "
          f"{sys.modules['torch'].__version__}")
    print(f"load average {load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end")
    print(f"{len(symbols)} symbols x {len(window.sessions)} sessions "
          f"({len(window.replay)} replayed, training rows before {train_end:%Y-%m-%d %H:%M}Z); "
          f"optuna: {opt.n_trials} trials (emergency {opt.emergency_trials}), {opt.n_splits} "
          f"folds, embargo {embargo_bars(settings)} bars, test fraction {opt.test_fraction}, "
          f"timeouts {opt.timeout_seconds:.0f} s / {opt.emergency_timeout_seconds:.0f} s per "
          f"member; members {settings.model.ensemble.members}"
          f"{'; --tiny nets and budgets' if args.tiny else ''}")
    print(setup_note)
    default_size = (len(symbols), args.sessions, args.tiny) == (DEFAULT_SYMBOLS_N,
                                                                DEFAULT_SESSIONS, False)
    if not default_size:
        print("NOT the target's size (10 x 60, default config): the PASS/FAIL lines are a "
              "smoke test only")

    for r in runs:
        print_ours(r)
    ok = all(r.seconds <= TARGETS_S[r.mode] for r in runs)

    if xgb_run is not None and peers:
        print_ours(xgb_run)
        ours_study = xgb_run.studies["xgboost"]
        if budget_note:
            print(budget_note)
        ok_all = True
        for peer in peers:
            fit_s = peer.seconds - peer.tuning_seconds
            print(f"\n{peer.label}, Optuna + raw xgboost: {peer.seconds:.1f} s (tuning "
                  f"{peer.tuning_seconds:.1f} s, final fit {fit_s:.1f} s; load average "
                  f"{peer.load:.2f} at its start); {peer.n_dev:,} dev rows, {peer.n_features} "
                  f"features; best mean fold AUC {peer.study.best_value:.4f}; trials: "
                  f"{study_counts(peer.study)}")
            first_equal, same, equal, worst = compare_trials(ours_study, peer.study)
            print(f"  check: trial 0 (defaults) mean fold AUC ours "
                  f"{fmt(ours_study.trials[0].value, '.6f')} vs peer "
                  f"{fmt(peer.study.trials[0].value, '.6f')}: "
                  f"{'OK equal' if first_equal else 'MISMATCH'}; trials with the same "
                  f"parameters completed by both: {same}, equal AUC {equal} (largest "
                  f"difference {worst:.1e})")
            ok_all = ok_all and first_equal
        ok = ok and ok_all
        print(f"\nratio ours/peer (XGBoost member, full) = {ratio_text(xgb_run, peers)}"
              + (" (mean of the peer runs; range over them)" if len(peers) > 1 else ""))
        print("  Load matters: xgboost's OpenMP threads (nthread = model.xgboost.n_jobs) wait for "
              "each other when another process takes a core, which can slow a small fit "
              "10-20x; compare the load averages above and run on an idle machine.")
        print("  What ours' extra time buys: the study in RDB storage (optuna.db: resumable, "
              "visible in optuna-dashboard), per-round validation AUC with median pruning "
              "(pruned trials stop early, so ours may do less boosting), test-window "
              "metrics, MLflow runs for the member and the ensemble (params, metrics, trials "
              "table, plots, the model and the pyfunc) and the registered version, the "
              "test-window backtest through the live trade cycle (bt_* metrics, report), and "
              "the promotion gate with its decision stored. A retrain over an existing "
              "champion also backtests the champion on the same window (not in these runs: "
              "each starts from an empty MLflow registry).")

    print("\n" + markdown(runs, peers, xgb_run))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
