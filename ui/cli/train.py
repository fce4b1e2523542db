"""`shopassist train sft | ranker | ctr | intents`: fine-tune the agent model, fine-tune it to rank, train the
CTR ranker (each from a YAML config), train the intent reader the agent acts on."""

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    group = sub.add_parser(
        "train",
        help="train: sft (the agent's LoRA adapter), ranker (a LoRA for ranking), ctr (the CTR ranker), intents",
    )
    kinds = group.add_subparsers(dest="what", required=True, metavar="{sft,ranker,ctr,intents}")

    p = kinds.add_parser("sft", help="fine-tune the agent model with LoRA (docs/FINETUNING.md)")
    p.add_argument(
        "--config", type=Path, required=True, help="YAML training config, e.g. finetune/configs/smollm2_lora.yaml"
    )
    p.set_defaults(func=cmd_sft)

    p = kinds.add_parser("ranker", help="fine-tune the model to rank: Yes/No on purchase histories (TALLRec)")
    p.add_argument("--config", type=Path, required=True, help="YAML config, e.g. finetune/configs/ranker_tallrec.yaml")
    p.set_defaults(func=cmd_ranker)

    p = kinds.add_parser("ctr", help="train the CTR ranker that rank_products uses (docs/RANKING.md)")
    p.add_argument(
        "--config", type=Path, required=True, help="YAML config, e.g. finetune/configs/ctr_complete_journey.yaml"
    )
    p.add_argument("--output-dir", help="where to save the model (overrides the config's output_dir)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_ctr)

    p = kinds.add_parser("intents", help="train the intent reader (assistant/intents.py) on Bitext and our wordings")
    p.add_argument("--bitext", type=Path, required=True, help="Bitext customer_support_requests.csv")
    p.add_argument("--tasks", type=Path, required=True, help="τ training tasks (their evaluation users are left out)")
    p.add_argument("--suite", type=Path, help="conversation suite: its customers left out, its messages a check")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: models/intent-minilm)")
    p.set_defaults(func=cmd_intents)


def cmd_sft(args: argparse.Namespace) -> int:
    from finetune.sft import SFTConfig, train

    print(train(SFTConfig.from_yaml(args.config)))
    return 0


def cmd_ranker(args: argparse.Namespace) -> int:
    from finetune.tallrec import RankerConfig, train

    print(train(RankerConfig.from_yaml(args.config)))
    return 0


def cmd_ctr(args: argparse.Namespace) -> int:
    from finetune.ctr.train import CTRConfig, run

    config = CTRConfig.from_yaml(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    metrics = run(config, progress=not args.quiet)
    print(json.dumps({k: v for k, v in metrics.items() if k != "calibration_test"}, indent=2))
    return 0


def cmd_intents(args: argparse.Namespace) -> int:
    from assistant.intents import SHIPPED
    from finetune.intents import train

    print(json.dumps(train(args.bitext, args.tasks, args.suite, args.out or SHIPPED), indent=1))
    return 0
