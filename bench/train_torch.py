#!/usr/bin/env python3
"""The pix2pix training step in plain PyTorch: the baseline `pipeline train` is timed against.

Our own port, written from ../shared/docs/pix2pix.md sections 2.2-2.6 (the reference is
junyanz/pytorch-CycleGAN-and-pix2pix): a U-Net generator with log2(crop) downsamplings
(`unet_256` at 256 px), the 70x70 PatchGAN (3 layers), batch norm, dropout 0.5 in the
num_downs - 5 blocks next to the innermost, LeakyReLU 0.2 in place (so the skip connections
carry the activated tensor), convolution biases as the reference gives them under batch
norm, N(0, 0.02) / BN N(1, 0.02) initialisation, Adam(2e-4, (0.5, 0.999)) for each net,
vanilla GAN (BCE with logits) + 100 x L1, D loss x 0.5, and the reference update order:
G forward once; D step on the detached fake and the real pair; G step against the updated D.

A is 1 channel (gray), B 3 channels (RGB), as `pipeline train`. The data is one fixed batch
of random values in [-1, 1], so only the step is timed. Prints the parameter counts on
stderr and one JSON line on stdout:
  {"impl": "pytorch", "crop": .., "batch": .., "ngf": .., "ndf": .., "threads": ..,
   "steps": .., "s_per_step": <median>, "images_per_s": <batch / median>}

Usage: bench/train_torch.py --crop 256 --batch 1 --ngf 64 --ndf 64 --steps 10 --threads 2
       bench/train_torch.py --crop 256 --batch 16 --device cuda
       bench/train_torch.py --counts   (parameter counts of the reference configurations)
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

LEAKY = 0.2
DROPOUT = 0.5


def conv(c_in, c_out, stride=2, bias=False):
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=stride, padding=1, bias=bias)


def conv_t(c_in, c_out, bias=False):
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=bias)


class Level(nn.Module):
    """One U-Net level, outermost = 0: a down convolution and the matching up convolution.

    Forward of an inner level: a = LeakyReLU(x) (in place, so x itself becomes the
    activated tensor, as in the reference), down = norm(conv(a)), inner = the next level,
    up = [dropout](norm(convT(ReLU(inner)))); returns cat(a, up). The outermost level has
    no activation or norm on the way down and ends in tanh without concatenating.
    """

    def __init__(self, index, num_downs, c_down_in, c_down_out, c_up_out, inner, dropout):
        super().__init__()
        self.outermost = index == 0
        innermost = index == num_downs - 1
        self.down = conv(c_down_in, c_down_out)  # no bias anywhere on the way down
        self.down_norm = None if (self.outermost or innermost) else nn.BatchNorm2d(c_down_out)
        self.inner = inner
        c_up_in = c_down_out if innermost else 2 * c_down_out
        # Under batch norm only the outermost (image) transposed convolution has a bias.
        self.up = conv_t(c_up_in, c_up_out, bias=self.outermost)
        self.up_norm = None if self.outermost else nn.BatchNorm2d(c_up_out)
        self.dropout = dropout

    def forward(self, x):
        a = x if self.outermost else F.leaky_relu(x, LEAKY, inplace=True)
        h = self.down(a)
        if self.down_norm is not None:
            h = self.down_norm(h)
        if self.inner is not None:
            h = self.inner(h)
        h = self.up(F.relu(h, inplace=True))
        if self.outermost:
            return torch.tanh(h)
        h = self.up_norm(h)
        if self.dropout:
            h = F.dropout(h, DROPOUT, training=self.training)
        return torch.cat([a, h], 1)


class Generator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf):
        super().__init__()
        assert num_downs >= 5, "the U-Net needs at least 5 downsamplings"
        # (down in, down out, up out) per level, outermost first.
        shapes = [(input_nc, ngf, output_nc), (ngf, 2 * ngf, ngf), (2 * ngf, 4 * ngf, 2 * ngf),
                  (4 * ngf, 8 * ngf, 4 * ngf)]
        shapes += [(8 * ngf, 8 * ngf, 8 * ngf)] * (num_downs - 4)
        inner = None
        for i in reversed(range(num_downs)):
            # Dropout in the num_downs - 5 levels just outside the innermost one.
            dropout = 4 <= i < num_downs - 1
            inner = Level(i, num_downs, *shapes[i], inner, dropout)
        self.net = inner

    def forward(self, x):
        return self.net(x)


class Discriminator(nn.Module):
    """70x70 PatchGAN for n_layers = 3: logits, no sigmoid."""

    def __init__(self, input_nc, ndf, n_layers=3):
        super().__init__()
        layers = [conv(input_nc, ndf, bias=True), nn.LeakyReLU(LEAKY, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2 ** n, 8)
            stride = 1 if n == n_layers else 2
            layers += [conv(ndf * previous, ndf * mult, stride=stride),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(LEAKY, inplace=True)]
        layers.append(conv(ndf * mult, 1, stride=1, bias=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def init_weights(net):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


def count(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def build(input_nc, output_nc, crop, ngf, ndf):
    num_downs = int(math.log2(crop))
    assert 2 ** num_downs == crop, "crop must be a power of two"
    g = init_weights(Generator(input_nc, output_nc, num_downs, ngf))
    d = init_weights(Discriminator(input_nc + output_nc, ndf))
    return g, d


def set_requires_grad(net, flag):
    for p in net.parameters():
        p.requires_grad_(flag)


def gan_loss(logits, real):
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def step(g, d, opt_g, opt_d, a, b, lambda_l1=100.0):
    """Pix2PixModel.optimize_parameters: returns (G_GAN, G_L1, D_real, D_fake)."""
    fake = g(a)

    set_requires_grad(d, True)
    opt_d.zero_grad()
    d_fake = gan_loss(d(torch.cat([a, fake.detach()], 1)), False)
    d_real = gan_loss(d(torch.cat([a, b], 1)), True)
    ((d_fake + d_real) * 0.5).backward()
    opt_d.step()

    set_requires_grad(d, False)
    opt_g.zero_grad()
    g_gan = gan_loss(d(torch.cat([a, fake], 1)), True)
    g_l1 = F.l1_loss(fake, b) * lambda_l1
    (g_gan + g_l1).backward()
    opt_g.step()
    return g_gan.item(), g_l1.item(), d_real.item(), d_fake.item()


def print_counts(label, input_nc, output_nc, crop, ngf, ndf):
    g, d = build(input_nc, output_nc, crop, ngf, ndf)
    print(f"params {label} {input_nc}->{output_nc} crop {crop} ngf {ngf} ndf {ndf}: "
          f"G {count(g):,} D {count(d):,}", file=sys.stderr)
    return count(g), count(d)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps (after the warm-up)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--input-nc", type=int, default=1)
    p.add_argument("--output-nc", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda (each step ends reading the losses, a sync)")
    p.add_argument("--counts", action="store_true",
                   help="print the parameter counts of the reference configurations and exit")
    args = p.parse_args()

    if args.counts:
        for (i, o, g_ref, d_ref) in [(3, 3, 54_413_955, 2_768_705), (1, 2, 54_409_858, 2_765_633)]:
            g, d = print_counts("reference", i, o, 256, 64, 64)
            assert (g, d) == (g_ref, d_ref), f"{i}->{o}: expected G {g_ref:,} D {d_ref:,}"
        print_counts("pipeline", 1, 3, 256, 64, 64)
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    g, d = build(args.input_nc, args.output_nc, args.crop, args.ngf, args.ndf)
    g, d = g.to(device), d.to(device)
    g.train()
    d.train()
    print(f"params {args.input_nc}->{args.output_nc} crop {args.crop} ngf {args.ngf} "
          f"ndf {args.ndf}: G {count(g):,} D {count(d):,}; threads {torch.get_num_threads()}",
          file=sys.stderr)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    shape = (args.batch, args.crop, args.crop)
    a = (torch.rand(shape[0], args.input_nc, *shape[1:]) * 2 - 1).to(device)
    b = (torch.rand(shape[0], args.output_nc, *shape[1:]) * 2 - 1).to(device)

    times = []
    for i in range(args.warmup + args.steps):
        started = time.perf_counter()
        losses = step(g, d, opt_g, opt_d, a, b)
        elapsed = time.perf_counter() - started
        if i >= args.warmup:
            times.append(elapsed)
        print(f"step {i + 1}: {elapsed:.3f} s  G_GAN {losses[0]:.3f} G_L1 {losses[1]:.3f} "
              f"D_real {losses[2]:.3f} D_fake {losses[3]:.3f}", file=sys.stderr)
    median = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "crop": args.crop, "batch": args.batch,
        "ngf": args.ngf, "ndf": args.ndf, "threads": torch.get_num_threads(), "device": args.device,
        "steps": len(times), "s_per_step": round(median, 5),
        "images_per_s": round(args.batch / median, 3),
        "s_min": round(min(times), 5), "s_max": round(max(times), 5),
    }))


if __name__ == "__main__":
    main()
