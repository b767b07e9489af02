#!/usr/bin/env python3
"""PyTorch twins of the pretrained recipe's networks: the anchors `label`, the pretrained
training step and `colorize` are timed against (bench/label.sh, bench/train.sh d,
bench/colorize.sh).

Our own port, layer for layer, of src/train/nets/efficientnet.rs (EfficientNet-Lite0: TF
"SAME" padding, batch norm eps 1e-3, ReLU6, input (p - 127) / 128), color_unet.rs (that
encoder on a gray stem under a U-Net decoder, regression head) and critic.rs (the
spectral-norm PatchGAN), with the variable names of their safetensors files, so the same
weights load into both. Plain eager PyTorch, as a user would write it.

  label     classify the given JPEGs as `pipeline label` does: a 224 px center crop (the
            JPEG decoded at the largest DCT reduction that keeps 224 px, Pillow's `draft`),
            the top 5 of 1,000 classes; one process per core, each with its own network on
            one thread, channels-last, batch 1. Prints images/s and writes each file's top-1.
  step      the pretrained recipe's training step on one fixed random batch (L in [-1, 1],
            ab in [-1, 1]), encoder frozen: `--phase l1` (100 x L1, Adam on the decoder, the
            moving average) or `--phase gan` (DiffAugment translation + cutout, the critic's
            step, then the generator's against it). Prints the median s/step.
  colorize  `pipeline colorize`'s path over the given photos, batch 1, in eval mode, with
            the weights of an exported model's model.safetensors, end to end (read, gray,
            the generator at the run's side, a*b* at the photo's, Lab -> sRGB, PNG), and
            the median seconds of the forward pass alone at the run's side and at 512.

Each mode prints one JSON line on stdout. Usage:
  torch_twins.py label --weights .weights/efficientnet-lite0.safetensors --procs 2 FILE... | --list F
  torch_twins.py step --phase l1 --crop 128 --batch 8 --ndf 32 --steps 20 --threads 2
  torch_twins.py colorize --model DIR --out DIR --threads 2 FILE...
"""

import argparse
import json
import math
import multiprocessing
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- EfficientNet-Lite0 (src/train/nets/efficientnet.rs) ---------------------------------

BN_EPS = 1e-3
# (repeats, kernel, stride, expansion, output channels)
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
SKIP_BLOCKS = [0, 2, 4, 10]
SKIP_CHANNELS = [16, 24, 40, 112]


def pad_same(x, kernel, stride):
    h, w = x.shape[-2:]
    pad = lambda n: max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
    ph, pw = pad(h), pad(w)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def conv_bn(x, conv, bn, activate=True):
    y = bn(conv(pad_same(x, conv.kernel_size[0], conv.stride[0])))
    return F.relu6(y) if activate else y


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, kernel, stride, expand):
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        h = conv_bn(x, self._expand_conv, self._bn0) if self.has_expand else x
        h = conv_bn(h, self._depthwise_conv, self._bn1)
        h = conv_bn(h, self._project_conv, self._bn2, activate=False)
        return h + x if self.residual else h


class Lite0(nn.Module):
    def __init__(self, in_channels=3, classifier=True):
        super().__init__()
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, 1000) if classifier else None

    def features(self, x):
        h = conv_bn(x, self._conv_stem, self._bn0)
        skips = []
        for i, block in enumerate(self._blocks):
            h = block(h)
            if i in SKIP_BLOCKS:
                skips.append(h)
        return skips, conv_bn(h, self._conv_head, self._bn1)

    def forward(self, x):
        return self._fc(self.features(x)[1].mean((2, 3)))


def normalise(pixels):
    return (pixels - 127.0) / 128.0


# --- The generator (src/train/nets/color_unet.rs, regression head) -----------------------

DECODER = [128, 64, 32, 16]
BOTTLENECK = 256


class DecoderBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class ColorUnet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Lite0(in_channels=1, classifier=False)
        self.bottleneck = nn.Conv2d(1280, BOTTLENECK, 1, bias=False)
        self.bottleneck_bn = nn.BatchNorm2d(BOTTLENECK)
        c_in = BOTTLENECK
        for i, (c_out, skip) in enumerate(zip(DECODER, reversed(SKIP_CHANNELS))):
            setattr(self, f"up{i}", DecoderBlock(c_in + skip, c_out))
            c_in = c_out
        self.out = nn.Conv2d(c_in, 2, 3, padding=1)

    @staticmethod
    def encoder_input(a):
        """A = L/50 - 1 -> the sRGB gray value of (L, 0, 0), normalised as ImageNet's."""
        fy = (a + 1.0) * (50.0 / 116.0) + 16.0 / 116.0
        y = torch.where(fy > 0.2068966, fy ** 3, (fy - 16.0 / 116.0) / 7.787).clamp(0.0, 1.0)
        srgb = torch.where(y > 0.0031308, y ** (1.0 / 2.4) * 1.055 - 0.055, y * 12.92)
        return normalise(srgb * 255.0)

    def forward(self, a):
        self.encoder.eval()  # the encoder keeps its ImageNet statistics, also in training
        with torch.no_grad():  # frozen
            skips, head = self.encoder.features(self.encoder_input(a))
        h = F.relu(self.bottleneck_bn(self.bottleneck(head)))
        for i, skip in enumerate(reversed(skips)):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = getattr(self, f"up{i}")(torch.cat([h, skip], 1))
        ab = torch.tanh(self.out(h))
        return F.interpolate(ab, scale_factor=2.0, mode="bilinear", align_corners=False)


# --- The critic (src/train/nets/critic.rs) and the step (src/train/recipes/pretrained.rs) -

def critic(ndf, n_layers=3, input_nc=3):
    sn = nn.utils.spectral_norm
    layers, mult = [sn(nn.Conv2d(input_nc, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)], 1
    for n in range(1, n_layers + 1):
        previous, mult = mult, min(2 ** n, 8)
        stride = 1 if n == n_layers else 2
        layers += [sn(nn.Conv2d(ndf * previous, ndf * mult, 4, stride, 1)), nn.LeakyReLU(0.2, True)]
    layers.append(sn(nn.Conv2d(ndf * mult, 1, 4, 1, 1)))
    return nn.Sequential(*layers)


def diff_augment(x, shift, hole):
    """DiffAugment's translation (1/8 of the side) and cutout (half the side), one draw for
    real and fake alike: `shift` and `hole` are per-sample offsets."""
    n, _, s, _ = x.shape
    idx = torch.arange(s)
    rows = (idx[None, :] - shift[:, 0:1]).clamp(-1, s)  # zero padding outside
    cols = (idx[None, :] - shift[:, 1:2]).clamp(-1, s)
    padded = F.pad(x, [1, 1, 1, 1])
    x = padded[torch.arange(n)[:, None, None], :, rows[:, :, None] + 1, cols[:, None, :] + 1]
    x = x.permute(0, 3, 1, 2)
    half = s // 4
    keep_r = ((idx[None, :] - hole[:, 0:1]).abs() >= half)[:, :, None]
    keep_c = ((idx[None, :] - hole[:, 1:2]).abs() >= half)[:, None, :]
    return x * (keep_r | keep_c)[:, None].to(x.dtype)


def time_step(args):
    torch.manual_seed(0)
    g, d = ColorUnet(), critic(args.ndf)
    g.train(), d.train()
    decoder = [p for name, p in g.named_parameters() if not name.startswith("encoder.")]
    for p in g.encoder.parameters():
        p.requires_grad_(False)
    ema = [p.detach().clone() for p in decoder]
    opt_g = torch.optim.Adam(decoder, lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    a = torch.rand(args.batch, 1, args.crop, args.crop) * 2 - 1
    b = torch.rand(args.batch, 2, args.crop, args.crop) * 2 - 1
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        fake = g(a)
        g_l1 = F.l1_loss(fake, b) * 100.0
        if args.phase == "l1":
            opt_g.zero_grad()
            g_l1.backward()
            opt_g.step()
            losses = [g_l1]
        else:
            s = args.crop
            shift = torch.randint(-(s // 8), s // 8 + 1, (args.batch, 2))
            hole = torch.randint(0, s, (args.batch, 2))
            seen = lambda pair: diff_augment(pair, shift, hole)
            opt_d.zero_grad()
            pred_fake = d(seen(torch.cat([a, fake.detach()], 1)))
            pred_real = d(seen(torch.cat([a, b], 1)))
            d_fake = bce(pred_fake, torch.zeros_like(pred_fake))
            d_real = bce(pred_real, torch.ones_like(pred_real))
            ((d_fake + d_real) * 0.5).backward()
            opt_d.step()
            for p in d.parameters():
                p.requires_grad_(False)
            opt_g.zero_grad()
            pred_fake = d(seen(torch.cat([a, fake], 1)))
            g_gan = bce(pred_fake, torch.ones_like(pred_fake))
            (g_gan + g_l1).backward()
            opt_g.step()
            for p in d.parameters():
                p.requires_grad_(True)
            losses = [g_gan, g_l1, d_real, d_fake]
        with torch.no_grad():
            decay = min(0.995, (1 + step) / (10 + step))
            for shadow, live in zip(ema, decoder):
                shadow.lerp_(live, 1 - decay)
        [loss.item() for loss in losses]  # read back, as the trainer does each step
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"impl": "pytorch", "phase": args.phase, "crop": args.crop, "batch": args.batch,
            "ndf": args.ndf, "threads": torch.get_num_threads(), "steps": args.steps,
            "s_per_step": median, "images_per_s": args.batch / median}


# --- Weights, photos ---------------------------------------------------------------------

def read_safetensors(path):
    """{name: tensor} of a safetensors file (F32 tensors only, which these are)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype="<f4").copy()).view(info["shape"])
    return out


def load(net, tensors, prefix=""):
    wanted = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: tensors[prefix + k] for k in wanted}
    net.load_state_dict(state, strict=False)


def crop_224(path):
    from PIL import Image
    image = Image.open(path)
    image.draft("RGB", (224, 224))  # libjpeg's DCT scaling, keeping both sides >= 224
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return np.array(image.resize((224, 224), Image.BICUBIC, box=box))


_NET = None


def _label_init(weights):
    global _NET
    torch.set_num_threads(1)
    _NET = Lite0().eval()
    load(_NET, read_safetensors(weights))
    _NET = _NET.to(memory_format=torch.channels_last)


def _label_one(path):
    pixels = torch.from_numpy(crop_224(path)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        x = normalise(pixels).contiguous(memory_format=torch.channels_last)
        p, index = _NET(x).softmax(1).topk(5, 1)
    return os.path.basename(path), int(index[0, 0]), float(p[0, 0])


def time_label(args):
    start = time.perf_counter()  # the workers' start and weights are timed, as ours are
    with multiprocessing.Pool(args.procs, _label_init, (args.weights,)) as pool:
        tops = pool.map(_label_one, args.files, chunksize=8)
    end = time.perf_counter()
    if args.out:
        with open(args.out, "w") as f:
            json.dump({name: index for name, index, _ in tops}, f)
    return {"impl": "pytorch", "images": len(tops), "procs": args.procs, "threads": 1,
            "wall_s": end - start,
            "images_per_s": len(tops) / (end - start)}


def lab_to_rgb(l, ab):
    """L* (N,1,H,W) and a*b* (N,2,H,W) -> sRGB in [0, 1] (D65, skimage's constants)."""
    fy = (l + 16.0) / 116.0
    fx, fz = fy + ab[:, :1] / 500.0, fy - ab[:, 1:] / 200.0
    f = torch.cat([fx, fy, fz], 1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)
    xyz = xyz * torch.tensor([0.95047, 1.0, 1.08883]).view(1, 3, 1, 1)
    m = torch.tensor([[3.24048134, -1.53715152, -0.49853633],
                      [-0.96925495, 1.87599, 0.04155593],
                      [0.05564664, -0.20404134, 1.05731107]])
    rgb = torch.einsum("ij,njhw->nihw", m, xyz).clamp(0.0, 1.0)
    return torch.where(rgb > 0.0031308, rgb ** (1 / 2.4) * 1.055 - 0.055, rgb * 12.92)


def time_colorize(args):
    """`pipeline colorize`'s path (src/eval/colorizer.rs): the photo's L* squashed to the
    run's side (antialiased bicubic), the generator, a*b* back at the photo's size
    (bilinear), L*a*b* -> sRGB with the photo's own L*."""
    from PIL import Image
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model, "config.json")) as f:
        side = json.load(f)["input"]["trained_side"]
    g = ColorUnet().eval()
    load(g, read_safetensors(os.path.join(args.model, "model.safetensors")), "G.")
    forward = {}
    with torch.no_grad():
        for at in (side, 512):
            x, times = torch.rand(1, 1, at, at) * 2 - 1, []
            for i in range(args.warmup + args.steps):
                start = time.perf_counter()
                g(x)
                if i >= args.warmup:
                    times.append(time.perf_counter() - start)
            forward[at] = statistics.median(times)
    start = time.perf_counter()
    with torch.no_grad():
        for path in args.files:
            gray = np.array(Image.open(path).convert("L"), dtype=np.float32) / 255.0
            y = torch.from_numpy(gray)[None, None]
            lin = torch.where(y > 0.04045, ((y + 0.055) / 1.055) ** 2.4, y / 12.92)
            l = torch.where(lin > 0.008856, 116.0 * lin ** (1 / 3) - 16.0, 903.3 * lin)
            small = F.interpolate(l, size=(side, side), mode="bicubic", antialias=True)
            ab = F.interpolate(g(small / 50.0 - 1.0), size=l.shape[-2:], mode="bilinear")
            rgb = lab_to_rgb(l, ab * 110.0)[0].permute(1, 2, 0).mul(255).round().byte().numpy()
            name = os.path.splitext(os.path.basename(path))[0] + ".png"
            Image.fromarray(rgb).save(os.path.join(args.out, name))
    end = time.perf_counter()
    return {"impl": "pytorch", "side": side, "batch": 1, "threads": args.threads,
            "forward_s": forward[side], "forward_512_s": forward[512],
            "photos": len(args.files), "end_to_end_images_per_s": len(args.files) / (end - start)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    label = sub.add_parser("label")
    label.add_argument("--weights", required=True)
    label.add_argument("--procs", type=int, default=os.cpu_count())
    label.add_argument("--out", help="write {file: top-1 class} here")
    label.add_argument("files", nargs="*")
    step = sub.add_parser("step")
    step.add_argument("--phase", choices=["l1", "gan"], required=True)
    step.add_argument("--crop", type=int, default=128)
    step.add_argument("--batch", type=int, default=8)
    step.add_argument("--ndf", type=int, default=32)
    for p in (step, sub.add_parser("colorize")):
        p.add_argument("--steps", type=int, default=10)
        p.add_argument("--warmup", type=int, default=2)
        p.add_argument("--threads", type=int, default=os.cpu_count())
    colorize = sub.choices["colorize"]
    colorize.add_argument("--model", required=True, help="an export-model folder")
    colorize.add_argument("--out", required=True)
    colorize.add_argument("files", nargs="*")
    for p in (label, colorize):
        p.add_argument("--list", help="a file naming the photos, one a line")
    args = parser.parse_args()
    if args.mode != "step" and args.list:
        with open(args.list) as f:
            args.files += f.read().split()
    if args.mode == "step":
        torch.set_num_threads(args.threads)
        result = time_step(args)
    elif args.mode == "label":
        result = time_label(args)
    else:
        result = time_colorize(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
