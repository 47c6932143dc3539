# Benchmark data: long documents of Zipf-distributed pseudo-words (kind "document": every token
# is a target), deterministic. Each document is cut into seq_len+1 chunks that fill whole rows,
# so padding stays a few percent. Usage: python3 bench_docs.py OUT.jsonl
import json, random, sys

rng = random.Random(0)
syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "st", "qu", "ng"]
words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(6000)]
weights = [1.0 / (i + 1) for i in range(len(words))]  # Zipf-like word frequencies
with open(sys.argv[1], "w") as f:
    for _ in range(40):
        sentences = (" ".join(rng.choices(words, weights, k=rng.randint(5, 16))).capitalize() + "."
                     for _ in range(400))
        f.write(json.dumps({"text": "\n".join(sentences)}) + "\n")
