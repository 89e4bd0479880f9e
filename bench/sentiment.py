"""FinBERT scoring throughput on CPU: torch fp32, torch dynamic int8, ONNX Runtime fp32 and int8.

No download: a BERT-base-sized classifier is built from ``BertConfig()`` defaults (hidden 768,
12 layers, 12 heads, vocabulary 30,522; 3 labels in FinBERT's order; random weights) and a
WordPiece tokenizer from a vocabulary made of the generated words plus single characters (so
numbers split into pieces, as in a real BERT vocabulary). FinBERT has exactly this shape, so
the arithmetic per token is the same as the real model's.

Texts (seeded): ``--texts`` synthetic headlines (about 20 tokens), and ``--long-texts``
headline + description texts, as ``score_unscored`` scores news (title + description), all
longer than ``--max-length`` and so truncated to it.

Per variant and batch size, the timed work is the model call over all texts, in batches sorted
by token count and padded per batch (tokenisation, done once outside the timing, is timed
separately). Each batch is run ``--repeat`` times (variants alternate) and its fastest time
counts, which filters out bursts of load from other processes. Then
``TransformerScorer(...).score(texts)`` with the library defaults (``SentimentSettings()``:
int8, batch 32, max length 64) is timed end to end: one warm-up call, then the best of
``--repeat`` + 1 whole calls (no per-batch minimum, so this figure is the conservative one).

Checks (exit status 1 on failure): ONNX Runtime fp32 probabilities equal torch fp32 within
1e-3; the library path's probabilities equal the torch int8 variant's within 1e-4 (so the
variant timed is the one the library runs). int8 agreement with fp32 is reported (argmax and
max |dp|), not checked: with random weights the classes are close, so argmax is fragile.

    .venv/bin/python bench/sentiment.py                  # 2,000 headlines, about 12 minutes
    .venv/bin/python bench/sentiment.py --texts 300 --batch-sizes 32 --long-texts 100
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from tradebot.features.finbert import TransformerScorer, quantize_linear

TARGET = 50.0  # headlines per second on 2 cores
COMPANIES = ["Apple", "Microsoft", "Nvidia", "Amazon", "Meta", "Alphabet", "Tesla", "Netflix",
             "Intel", "Oracle", "Boeing", "Pfizer", "Moderna", "Exxon", "Chevron", "Walmart",
             "Costco", "Nike", "Starbucks", "Disney", "Goldman Sachs", "Morgan Stanley",
             "JPMorgan", "Citigroup", "Salesforce", "Adobe", "Qualcomm", "Broadcom", "AMD"]
TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "META", "GOOGL", "TSLA", "NFLX", "INTC", "ORCL"]
MOVES = ["rise", "fall", "jump", "slide", "surge", "drop", "climb", "sink", "rally", "slump"]
EVENTS = ["earnings beat", "revenue miss", "guidance cut", "analyst upgrade", "CEO departure",
          "buyback announcement", "regulatory probe", "product recall", "record quarter",
          "dividend increase", "supply chain warning", "antitrust ruling"]
METRICS = ["revenue", "profit", "earnings", "sales", "margins", "bookings", "cash flow"]
RATINGS = ["buy", "sell", "hold", "overweight", "underweight", "neutral", "outperform"]
BANKS = ["Goldman Sachs", "Morgan Stanley", "JPMorgan", "Barclays", "UBS", "Jefferies"]
FILLER = ["the", "company", "said", "on", "in", "as", "its", "for", "to", "a", "of", "and",
          "quarter", "year", "analysts", "expected", "investors", "market", "shares", "after",
          "while", "demand", "costs", "outlook", "with", "than", "from", "billion", "million",
          "percent", "estimates", "second", "third", "fourth", "first", "strong", "weak"]


def headline(rng: random.Random) -> str:
    co, co2 = rng.sample(COMPANIES, 2)
    pct = f"{rng.uniform(0.5, 15):.1f}%"
    forms = [
        f"{co} shares {rng.choice(MOVES)} {pct} after {rng.choice(EVENTS)}",
        f"{co} ({rng.choice(TICKERS)}) {rng.choice(METRICS)} {rng.choice(MOVES)} {pct} in "
        f"{rng.choice(['Q1', 'Q2', 'Q3', 'Q4'])} as demand {rng.choice(MOVES)}s",
        f"{co} to acquire {co2} for ${rng.randint(2, 90)} billion in cash and stock",
        f"{rng.choice(BANKS)} moves {co} to {rng.choice(RATINGS)}, price target "
        f"${rng.randint(20, 900)}",
        f"{co} {rng.choice(METRICS)} beat estimates; full-year outlook {rng.choice(MOVES)}s",
        f"Stocks {rng.choice(MOVES)} as {co} and {co2} report {rng.choice(EVENTS)}",
    ]
    tail = rng.choice([
        "", "", f", {rng.choice(BANKS)} says", f" as investors weigh {rng.choice(EVENTS)}",
        f" ahead of {rng.choice(['first', 'second', 'third', 'fourth'])} quarter earnings",
        f" amid {rng.choice(EVENTS)} concerns", f"; {co2} shares {rng.choice(MOVES)} {pct}",
    ])
    return rng.choice(forms) + tail


def description(rng: random.Random) -> str:
    return " ".join(rng.choice(FILLER + METRICS + MOVES) for _ in range(rng.randint(45, 90)))


def build_tokenizer(sample: list[str]) -> BertTokenizer:
    """WordPiece over the alphabetic words of ``sample`` plus single characters (numbers and
    unseen words split into character pieces)."""
    words = {w for text in sample for w in re.findall(r"[a-z]+", text.lower())}
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars,
              *(f"##{c}" for c in chars), *sorted(words - set(chars))]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def batches(tokenizer: BertTokenizer, texts: list[str], size: int, max_length: int
            ) -> tuple[list[dict[str, torch.Tensor]], list[int]]:
    """Padded batches in token-count order (as TransformerScorer builds them), and that order."""
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
    out = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        out.append(dict(tokenizer.pad({k: [enc[k][i] for i in chunk] for k in enc},
                                      return_tensors="pt")))
    return out, order


Runner = Callable[[dict[str, torch.Tensor]], np.ndarray]


def torch_runner(model: torch.nn.Module) -> Runner:
    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        with torch.inference_mode():
            return torch.softmax(model(**batch).logits.float(), dim=-1).numpy()
    return run


def onnx_runners(model: torch.nn.Module, sample: dict[str, torch.Tensor], workdir: Path,
                 threads: int) -> dict[str, Runner]:
    """ONNX Runtime fp32 and dynamic-int8 sessions for the model (empty if not installed)."""
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        print(f"NOTE: ONNX Runtime variants skipped ({exc}); pip install onnxruntime onnx "
              "onnxscript to measure them")
        return {}

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits

    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    fp32, clean, int8 = (workdir / f"{n}.onnx" for n in ("fp32", "clean", "int8"))
    started = time.perf_counter()
    # the TorchScript exporter (dynamo=False) gives wrong logits for transformers 5 BERT
    # (|d logit| up to 0.3); the dynamo exporter matches torch to 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model), tuple(sample[n] for n in names), str(fp32),
                          input_names=names, output_names=["logits"], dynamo=True,
                          dynamic_shapes={n: {0: batch, 1: seq} for n in names}, optimize=True)
    graph = onnx.load(str(fp32))
    del graph.graph.value_info[:]  # stale shapes from the exporter break ORT's quantiser
    onnx.save(graph, str(clean))
    quantize_dynamic(str(clean), str(int8), weight_type=QuantType.QInt8)
    print(f"ONNX export + int8 quantisation: {time.perf_counter() - started:.0f} s")

    def runner(path: Path) -> Runner:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(b: dict[str, torch.Tensor]) -> np.ndarray:
            logits = session.run(None, {n: b[n].numpy() for n in names})[0]
            return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
        return run

    return {"ORT fp32": runner(fp32), "ORT int8": runner(int8)}


def timed(run: Runner, prepared: list[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per batch and the probabilities of one pass over all batches."""
    run(prepared[0])  # warm-up
    seconds, probs = [], []
    for batch in prepared:
        started = time.perf_counter()
        probs.append(run(batch))
        seconds.append(time.perf_counter() - started)
    return np.array(seconds), np.concatenate(probs)


def unsort(probs: np.ndarray, order: list[int]) -> np.ndarray:
    out = np.empty_like(probs)
    out[order] = probs
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000, help="synthetic headlines")
    parser.add_argument("--long-texts", type=int, default=300,
                        help="headline + description texts (truncated), at batch 32")
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2,
                        help="passes per variant; each batch's fastest pass counts")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sentiment-"))  # model files, about 1 GB
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    rng = random.Random(args.seed)
    heads = [headline(rng) for _ in range(args.texts)]
    longs = [f"{headline(rng)} {description(rng)}" for _ in range(args.long_texts)]

    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}, "
          f"torch threads {torch.get_num_threads()}; Python {platform.python_version()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    vocab_rng = random.Random(args.seed + 1)
    tokenizer = build_tokenizer([headline(vocab_rng) for _ in range(5_000)]
                                + [description(vocab_rng) for _ in range(100)])
    torch.manual_seed(args.seed)
    config = BertConfig(num_labels=3, id2label={0: "positive", 1: "negative", 2: "neutral"},
                        label2id={"positive": 0, "negative": 1, "neutral": 2})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(workdir / "bert-base-random")
    tokenizer.save_pretrained(workdir / "bert-base-random")

    started = time.perf_counter()
    lengths = [len(ids) for ids in tokenizer(heads, truncation=True,
                                             max_length=args.max_length)["input_ids"]]
    tok_s = time.perf_counter() - started
    print(f"{len(heads)} headlines: mean {np.mean(lengths):.1f} tokens (max {max(lengths)}), "
          f"tokenisation {len(heads) / tok_s:,.0f} texts/s; {len(longs)} long texts at "
          f"{args.max_length} tokens")

    runners: dict[str, Runner] = {"torch fp32": torch_runner(model),
                                  "torch int8": torch_runner(quantize_linear(copy.deepcopy(model)))}
    if not args.no_onnx:
        runners |= onnx_runners(model, batches(tokenizer, heads[:4], 4, args.max_length)[0][0],
                                workdir, args.threads)

    rates: dict[tuple[str, str], float] = {}
    probs: dict[str, np.ndarray] = {}
    probe = 32 if 32 in sizes else sizes[0]  # batch size whose outputs are compared
    cases = [("headlines", heads, s) for s in sizes] + [("long", longs, 32)] * bool(longs)
    for kind, texts, size in cases:
        prepared, order = batches(tokenizer, texts, size, args.max_length)
        best: dict[str, np.ndarray] = {}
        for _ in range(args.repeat):
            for name, run in runners.items():  # variants alternate within each repeat
                seconds, p = timed(run, prepared)
                best[name] = np.minimum(best.get(name, seconds), seconds)
                if kind == "headlines" and size == probe:
                    probs[name] = unsort(p, order)
        for name in runners:
            rates[(name, f"{kind} b{size}")] = rate = len(texts) / best[name].sum()
            print(f"  {name:<11} {kind:<9} batch {size:>3}: {rate:6.1f} texts/s", flush=True)

    defaults = TransformerScorer(str(workdir / "bert-base-random"))  # SentimentSettings defaults
    lib_rates: dict[str, float] = {}
    for kind, texts in (("headlines", heads), ("long", longs)):
        if not texts:
            continue
        defaults.score(texts)  # warm-up: first calls at new shapes are slower
        calls = []
        for _ in range(args.repeat + 1):
            started = time.perf_counter()
            scores = defaults.score(texts)
            calls.append(len(texts) / (time.perf_counter() - started))
        lib_rates[kind] = max(calls)
        print(f"  library   {kind:<9} batch  32: {', '.join(f'{c:.1f}' for c in calls)} "
              "texts/s (whole calls)", flush=True)
        if kind == "headlines":
            lib = np.array([[s.positive, s.negative, s.neutral] for s in scores])

    columns = [f"headlines b{s}" for s in sizes] + ["long b32"] * bool(longs)
    print("\ntexts/s | " + " | ".join(columns))
    for name in runners:
        print(f"{name:<11} | " + " | ".join(f"{rates[(name, c)]:.1f}" for c in columns))
    best = max(runners, key=lambda n: max(rates[(n, f"headlines b{s}")] for s in sizes))
    best_rate = max(rates[(best, f"headlines b{s}")] for s in sizes)
    print(f"fastest on headlines: {best} ({best_rate:.1f} texts/s)")
    print(f"library default (TransformerScorer: int8, batch {defaults.batch_size}, max length "
          f"{defaults.max_length}), end to end incl. tokenisation: "
          + ", ".join(f"{k} {v:.1f} texts/s" for k, v in lib_rates.items()))
    met = lib_rates["headlines"] >= TARGET
    print(f"target >= {TARGET:.0f} headlines/s with the library default: "
          f"{'MET' if met else 'MISSED'}")

    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    ok = True
    ref = probs["torch fp32"]
    for name, p in probs.items():
        if name == "torch fp32":
            continue
        agree = np.mean(p.argmax(1) == ref.argmax(1)) * 100
        print(f"{name} vs torch fp32: max |dp| {np.abs(p - ref).max():.2e}, argmax agrees "
              f"{agree:.1f}%")
    if "ORT fp32" in probs and np.abs(probs["ORT fp32"] - ref).max() > 1e-3:
        print("CHECK FAILED: ORT fp32 differs from torch fp32 by more than 1e-3")
        ok = False
    lib_diff = np.abs(lib - probs["torch int8"]).max()
    print(f"library path vs torch int8 variant: max |dp| {lib_diff:.2e}")
    if lib_diff > 1e-4:
        print("CHECK FAILED: the library path does not compute the torch int8 variant")
        ok = False
    print("checks OK" if ok else "checks FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
