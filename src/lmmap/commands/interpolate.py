"""The merge step of weight interpolation: one grid model from its three parents."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lmmap import interpolate
from lmmap.commands import Step

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "interpolate",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        help="merge three models' weights at one (alpha, beta) point, shard by shard",
    )
    p.add_argument(
        "--parents",
        required=True,
        help='JSON list of three {"model_id", "source", "revision"}: theta_0, theta_1, theta_2 '
        "(a local model directory or a hub id already in the local cache)",
    )
    p.add_argument("--alpha", type=float, required=True, help="weight of theta_1 - theta_0")
    p.add_argument("--beta", type=float, required=True, help="weight of theta_2 - theta_0")
    p.add_argument(
        "--dtype",
        required=True,
        choices=sorted(interpolate.BYTES_PER_PARAM),
        help="dtype of the merged weights (computed in float32)",
    )
    p.add_argument("--shard-gb", type=float, required=True, help="largest output shard (GB)")
    p.add_argument("--out-dir", required=True, help="the merged model's directory (save_pretrained layout)")
    p.set_defaults(func=run_interpolate)


def run_interpolate(args: argparse.Namespace) -> int:
    step = Step("interpolate", args)  # its inputs: the parents, once resolved
    parents = interpolate.parse_parents(args.parents)
    dirs = [interpolate.resolve_model_dir(p["source"], p.get("revision")) for p in parents]
    measured = interpolate.merge_model(
        dirs, args.alpha, args.beta, args.out_dir, args.dtype, int(args.shard_gb * 1e9), info={"parents": parents}
    )
    log.info(
        "merged %s at alpha=%g, beta=%g: %d parameters in %d shard(s), |d1| = %.4g, |d2| = %.4g, angle %.2f deg",
        args.out_dir,
        args.alpha,
        args.beta,
        measured["n_params"],
        measured["n_shards"],
        measured["norm1"],
        measured["norm2"],
        measured["angle_deg"],
    )
    out = Path(args.out_dir)
    # the parents by their config (hashing 3 × 13.5 GB of weights per grid point would cost more than the merge)
    inputs = {f"parent {p.get('model_id', p['source'])}": d / "config.json" for p, d in zip(parents, dirs)}
    step.inputs = inputs
    for name in ("config.json", interpolate.INFO_FILE):
        step.record(out / name, {"interpolation": measured})
    return 0
