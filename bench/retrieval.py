"""Benchmark: cost of the pipeline's lexical retrieval (BM25 over an assistant's common questions)
as the knowledge grows: the one-off index build (cached per assistant until its FAQ changes) and
one plan_answer call per turn (p50, p95). Usage: python bench/retrieval.py [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from chatsvc.assistants.models import Assistant
from chatsvc.generation.pipeline import Knowledge, plan_answer
from chatsvc.knowledge.models import CommonQuestion

WORDS = (
    "account password reset invoice refund shipping price plan upgrade cancel order delivery "
    "address payment card bank transfer login email phone support hours store return warranty "
    "discount coupon subscription trial export report language mobile app desktop security"
).split()


def faqs(count: int, rng: random.Random) -> list[CommonQuestion]:
    return [
        CommonQuestion(
            id=i,
            name=" ".join(rng.choices(WORDS, k=6)) + "?",
            content=" ".join(rng.choices(WORDS, k=40)),
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    assistant = Assistant(
        id=1, description="d", system_prompt="", generation_config="offline", temperature=0.5,
        strategy_to_optimize_tokens="none", faq_available=True, fixed_available=True,
        lessons_available=True, not_info_message=None, add_to_user_message=None,
    )  # fmt: skip
    print(f"{'faq items':>10} {'index build ms':>15} {'turn p50 ms':>12} {'turn p95 ms':>12}")
    for size in (int(s) for s in args.sizes.split(",")):
        rows = faqs(size, rng)
        started = time.perf_counter()
        knowledge = Knowledge.of(faqs=rows)
        built_ms = (time.perf_counter() - started) * 1000
        samples = []
        for _ in range(args.queries):
            question = " ".join(rng.choices(WORDS, k=8))
            started = time.perf_counter()
            plan_answer(assistant, [], question, knowledge)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[int(len(samples) * 0.95) - 1]
        median = statistics.median(samples)
        print(f"{size:>10} {built_ms:>15.1f} {median:>12.2f} {p95:>12.2f}")


if __name__ == "__main__":
    main()
