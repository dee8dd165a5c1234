"""Autoregressive models: the chain rule, made into networks.

``p(x) = prod_i p(x_i | x_1 .. x_{i-1})``: each model outputs, for every position
``i``, a categorical distribution over ``levels`` values that depends only on the
positions before ``i`` in its ordering (the first position sees only a start
symbol). So ``log_prob`` is exact and sampling takes ``d`` sequential steps, one per
position.

- :class:`MADE`: a masked MLP (Germain et al., 2015), one or several orderings;
- :class:`PixelCNN`: masked convolutions, mask A then mask B (van den Oord et al., 2016);
- :class:`PixelTransformer`: causal self-attention over pixel tokens with position
  embeddings, Image GPT style (Chen et al., 2020).

All work on integer data ``(B, *shape)`` with values ``0..levels-1``: grey levels,
binary pixels, or the code indices of a VQ-VAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable

__all__ = ["MADE", "AutoregressiveModel", "PixelCNN", "PixelTransformer", "made_masks"]


class AutoregressiveModel(Saveable, nn.Module):
    """Shared machinery: checks, exact ``log_prob``, sequential ``sample`` and ``complete``.

    Subclasses implement ``logits(x) -> (B, d, levels)`` over flattened positions and
    set ``self.order``, the positions in the order they are generated.
    """

    batch_parts = 1  # fit passes the data alone (labels are dropped)

    def __init__(self, shape: Sequence[int], levels: int):
        super().__init__()
        self.shape = checks.sizes(shape, "shape", allow_empty=False)
        levels = checks.integer(levels, "levels", low=2)
        self.levels, self.d = levels, math.prod(self.shape)
        self.register_buffer("order", torch.arange(self.d))

    def _check(self, x, name: str = "x", min_len: int = 0) -> torch.Tensor:
        """Integer data ``(B, *shape)`` in ``0..levels-1`` (converted as
        :func:`selfsup._checks.images` converts), flattened, on the model's device."""
        device = self.order.device
        x = checks.images(x, name, self.shape, "levels", self.levels, min_len=min_len,
                          device=device)  # fmt: skip
        return x.reshape(len(x), self.d)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact ``log p(x)`` in nats, ``(B,)``, of integer data ``(B, *shape)``
        (``generator`` is accepted for the protocol's sake: nothing here is random)."""
        checks.generator(generator)
        return self._log_prob(self._check(x))

    def _log_prob(self, flat: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` ``(B,)`` of checked, flattened data ``(B, d)``."""
        logp = torch.log_softmax(self.logits(flat), -1)
        return logp.gather(-1, flat[..., None]).squeeze(-1).sum(-1)

    def conditional_log_prob(
        self, x: torch.Tensor, known_mask: torch.Tensor, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """``sum over unknown positions of log p(x_i | x_<i)``, ``(B,)`` nats.

        When the known positions come first in the ordering (e.g. the top half in
        raster order) this is exactly ``log p(x_unknown | x_known)``. Deterministic, so
        ``generator`` (accepted, as by every conditional density) is unused.
        """
        checks.generator(generator)
        flat = self._check(x)
        mask = self._mask(known_mask)
        logp = torch.log_softmax(self.logits(flat), -1).gather(-1, flat[..., None]).squeeze(-1)
        return (logp * (~mask).float()).sum(-1)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per example of ``batch`` ``(B, *shape)``,
        ``B >= 1``."""
        return -self._log_prob(self._check(batch, "batch", min_len=1)).mean()

    def _mask(self, known_mask: torch.Tensor) -> torch.Tensor:
        return checks.known_mask(known_mask, self.shape).reshape(self.d).to(self.order.device)

    @torch.no_grad()
    def complete(
        self,
        x: torch.Tensor,
        known_mask: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        samples: int = 16,
    ) -> torch.Tensor:
        """The conditional mean ``E[x_u | x_k]`` of the unknown positions, estimated by
        averaging ``samples`` draws of :meth:`inpaint` (floats ``(B, *shape)``; the known
        positions keep their values)."""
        samples = checks.integer(samples, "samples")
        flat = self._check(x)
        draws = self.inpaint(flat.repeat(samples, 1).reshape(-1, *self.shape), known_mask,
                             generator=generator)  # fmt: skip
        return draws.float().reshape(samples, len(flat), *self.shape).mean(0)

    @torch.no_grad()
    def inpaint(
        self, x: torch.Tensor, known_mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Sample the unknown positions of ``x`` given the known ones, in model order.

        Known positions are never changed. Each unknown position is drawn from
        ``p(x_i | x_<i)``: exact conditioning when the known positions are a prefix of
        the ordering; otherwise later known positions are ignored for earlier ones.
        """
        checks.generator(generator)
        flat = self._check(x).clone()
        mask = self._mask(known_mask)
        if len(flat) == 0:
            return flat.reshape(0, *self.shape)
        known = mask.tolist()  # two reads of the device per call, none per position
        todo = [pos for pos in self.order.tolist() if not known[pos]]
        noise = _CategoricalNoise(len(flat), self.levels, len(todo), generator, flat.device)
        with tensors.eval_mode(self):
            self._fill(flat, known, todo, noise)
        return flat.reshape(len(flat), *self.shape)

    def _fill(self, flat: torch.Tensor, known: list, todo: list, noise) -> None:
        """Draw the positions ``todo`` of ``flat`` ``(B, d)`` in place, in that order,
        draw ``i`` with the noise ``noise.next(i)``: the whole network over all ``d``
        positions for each (a model with a cheaper step overrides this)."""
        for i, pos in enumerate(todo):
            probs = torch.softmax(self.logits(flat)[:, pos], -1)
            flat[:, pos] = (probs / noise.next(i)).argmax(-1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples, integers ``(n, *shape)``, one position at a time: ``d`` sequential
        steps (network passes, or the cheaper step a model overrides :meth:`_fill` with)."""
        n = checks.sample_count(n)
        start = torch.zeros((n, *self.shape), dtype=torch.long, device=self.order.device)
        return self.inpaint(start, torch.zeros(self.shape, dtype=torch.bool), generator=generator)


class _CategoricalNoise:
    """The random numbers of ``steps`` categorical draws of ``n`` values each, made in a
    few large pieces on the generator's device and moved to ``device`` once a piece.

    A draw is ``argmax(probs / q)`` with ``q ~ Exp(1)``: the exponential race, which is
    how ``torch.multinomial`` draws one sample, so a CPU generator gives the same
    samples as ``multinomial`` did, draw for draw. But nothing is read back per
    position: ``multinomial`` checks its input on the host and, with a CPU generator,
    needs the probabilities on the CPU.
    """

    PIECE = 1 << 24  # numbers per piece (64 MB of float32)

    def __init__(self, n: int, levels: int, steps: int, generator, device):
        self.shape, self.steps = (n, levels), steps
        self.per = max(1, self.PIECE // max(1, n * levels))
        self.generator, self.device = generator, device
        self.where = tensors.draw_device(generator, device)
        self.piece, self.start = None, 0

    def next(self, i: int) -> torch.Tensor:
        """The ``(n, levels)`` numbers of draw ``i`` (called with ``i = 0, 1, ...``)."""
        if self.piece is None or i >= self.start + len(self.piece):
            self.start = i
            size = (min(self.per, self.steps - i), *self.shape)
            q = torch.empty(size, device=self.where).exponential_(generator=self.generator)
            self.piece = q.to(self.device)
        return self.piece[i - self.start]


class _MaskedLinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", torch.ones(n_out, n_in))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(
    rank: torch.Tensor, hidden_degrees: Sequence[torch.Tensor], levels: int
) -> list[torch.Tensor]:
    """MADE's connectivity masks for one ordering (Germain et al., 2015).

    Each input position is one-hot encoded over ``levels`` values, so position ``p``
    owns ``levels`` consecutive input units, all of degree ``rank[p]``, and likewise
    ``levels`` output units (its logits). A hidden unit of degree ``m`` may see the
    input units of degree ``<= m``; an output unit of degree ``k`` may see the hidden
    units (or, with no hidden layer, the input units) of degree ``< k`` *strictly*,
    so the logits of a position never depend on itself or on later positions.

    Args:
        rank: ``(d,)`` a permutation of ``0..d-1``; ``rank[p]`` is the step at which
            position ``p`` is generated.
        hidden_degrees: one ``(h_l,)`` integer tensor per hidden layer, the degree of
            each hidden unit, values in ``[0, d - 2]``.
        levels: the number of values of each position (the one-hot width).
    Returns:
        one float 0/1 mask per linear layer, shaped like its weight ``(n_out, n_in)``:
        ``(h_1, d * levels)``, ..., ``(d * levels, h_L)``.
    """
    rank = torch.as_tensor(rank)
    d = len(rank)
    if rank.ndim != 1 or not torch.equal(rank.sort().values, torch.arange(d)):
        raise ValueError(f"rank must be a permutation of 0..d-1, got {rank.tolist()}")
    levels = checks.integer(levels, "levels")
    # BEGIN SOLUTION
    degrees = [rank.repeat_interleave(levels), *hidden_degrees, rank.repeat_interleave(levels)]
    masks = [
        (d_out[:, None] >= d_in[None, :]).float()
        for d_in, d_out in zip(degrees[:-2], degrees[1:-1], strict=True)
    ]
    masks.append((degrees[-1][:, None] > degrees[-2][None, :]).float())
    return masks
    # END SOLUTION


class MADE(AutoregressiveModel):
    """Masked autoencoder for distribution estimation.

    Each input position is one-hot encoded; hidden units get a random "degree" and see
    only inputs of lower or equal degree; outputs for the position of degree ``k`` see
    only hidden units of degree below ``k``. With ``orderings > 1`` each training batch
    uses one of several random orderings (and hidden degrees), and ``log_prob`` is the
    exact likelihood of the uniform mixture over the orderings.
    """

    def __init__(
        self,
        shape: Sequence[int],
        levels: int,
        hidden: Sequence[int] = (512,),
        orderings: int = 1,
        dropout: float = 0.0,
        seed: int = 0,
    ):
        super().__init__(shape, levels)
        levels = self.levels  # checked (a NumPy integer becomes an int)
        orderings = checks.integer(orderings, "orderings")
        hidden = checks.sizes(hidden, "hidden", example="(512,)")
        dropout = checks.number(dropout, "dropout", low=0, high=1, high_open=True)
        seed = checks.integer(seed, "seed", low=0)
        sizes = [self.d * levels, *hidden, self.d * levels]
        self.layers = nn.ModuleList(
            _MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        g = torch.Generator().manual_seed(seed)
        masks = []
        for k in range(orderings):
            order = torch.arange(self.d) if k == 0 else torch.randperm(self.d, generator=g)
            rank = torch.empty(self.d, dtype=torch.long)
            rank[order] = torch.arange(self.d)  # rank[p]: when position p is generated
            hidden_degrees = [
                torch.randint(0, max(self.d - 1, 1), (int(h),), generator=g) for h in hidden
            ]
            masks.append((order, made_masks(rank, hidden_degrees, levels)))
        # Every ordering's masks as buffers, so that they move with the model: switching
        # ordering at each batch copies on the device, never from the host.
        self.register_buffer("_orders", torch.stack([o for o, _ in masks]), persistent=False)
        for i in range(len(self.layers)):
            stack = torch.stack([m[i] for _, m in masks])
            self.register_buffer(f"_masks{i}", stack, persistent=False)
        self.orderings, self._current = orderings, 0
        self._use(0)

    def _saved_extra(self) -> dict:
        return {"ordering": self._current}  # which ordering the masks hold

    def _load_extra(self, extra: dict) -> None:
        self._use(checks.integer(extra["ordering"], "ordering", low=0, high=self.orderings - 1))

    def _use(self, k: int) -> None:
        self.order.copy_(self._orders[k])
        for i, layer in enumerate(self.layers):
            layer.mask.copy_(getattr(self, f"_masks{i}")[k])
        self._current = k

    def _hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations ``(B, width)`` of integers ``(B, d)``."""
        h = F.one_hot(x, self.levels).to(self.layers[0].weight.dtype)
        h = h.reshape(len(x), self.d * self.levels)  # -1 cannot be inferred for B = 0
        for layer in self.layers[:-1]:
            h = self.dropout(F.relu(layer(h)))
        return h

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[-1](self._hidden(x)).reshape(len(x), self.d, self.levels)

    def _fill(self, flat: torch.Tensor, known: list, todo: list, noise) -> None:
        """As in :class:`AutoregressiveModel`, with two savings. The output layer
        computes only the drawn position's ``levels`` logits. The first layer's input is
        one-hot, so its pre-activation is the bias plus one weight column per position: it
        is computed once, and a draw swaps its position's column (the drawn value's for
        the current one's): ``B x width`` work instead of ``B x d levels x width``. The
        same draws as the generic sampler, up to round-off in the running sum."""
        if not todo:
            return
        first, out, step = self.layers[0], self.layers[-1], self.levels
        w_in = first.weight * first.mask  # (width, d levels)
        columns = w_in.T.reshape(self.d, step, -1)  # columns[p, v]: input (p, v)'s column
        pre = first(F.one_hot(flat, step).to(w_in.dtype).reshape(len(flat), -1))
        if first is out:  # no hidden layer: the sum is the logits

            def logits(rows: slice) -> torch.Tensor:
                return pre[:, rows]

        else:
            w_out = out.weight * out.mask

            def logits(rows: slice) -> torch.Tensor:
                h = self.dropout(F.relu(pre))
                for layer in self.layers[1:-1]:
                    h = self.dropout(F.relu(layer(h)))
                return F.linear(h, w_out[rows], out.bias[rows])

        for i, pos in enumerate(todo):
            probs = torch.softmax(logits(slice(pos * step, (pos + 1) * step)), -1)
            drawn = (probs / noise.next(i)).argmax(-1)
            pre += columns[pos, drawn] - columns[pos, flat[:, pos]]
            flat[:, pos] = drawn

    def _log_prob(self, flat: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` ``(B,)``: of the uniform mixture over the orderings."""
        if self.orderings == 1:
            return super()._log_prob(flat)
        current, parts = self._current, []
        for k in range(self.orderings):
            self._use(k)
            parts.append(super()._log_prob(flat))
        self._use(current)
        return torch.logsumexp(torch.stack(parts), 0) - math.log(self.orderings)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per example of ``batch`` ``(B, *shape)``;
        with several orderings, of one ordering drawn for the batch."""
        if self.orderings > 1:  # connectivity-agnostic training: one ordering per batch
            self._use(int(torch.randint(self.orderings, ())))
            flat = self._check(batch, "batch", min_len=1)
            return -AutoregressiveModel._log_prob(self, flat).mean()
        return super().loss(batch)

    @torch.no_grad()
    def inpaint(self, x, known_mask, *, generator=None):
        """As in :class:`AutoregressiveModel`, with one ordering drawn per call."""
        checks.generator(generator)
        if self.orderings > 1:
            where = tensors.draw_device(generator, "cpu")
            self._use(int(torch.randint(self.orderings, (), generator=generator, device=where)))
        return super().inpaint(x, known_mask, generator=generator)


class _MaskedConv2d(nn.Conv2d):
    """A convolution that sees only pixels above, and to the left in the same row;
    type A also hides the centre pixel itself."""

    def __init__(self, mask_type: str, c_in: int, c_out: int, kernel: int):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        mask = torch.ones(kernel, kernel)
        mask[kernel // 2, kernel // 2 + (mask_type == "B") :] = 0
        mask[kernel // 2 + 1 :] = 0
        self.register_buffer("mask", mask[None, None])

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(AutoregressiveModel):
    """A PixelCNN over images (or code grids) ``(H, W)`` in raster order.

    Values are embedded (they are categories), then one mask-A convolution and
    ``layers - 1`` residual mask-B convolutions, and a 1x1 output to ``levels`` logits.
    """

    def __init__(
        self,
        shape: Sequence[int],
        levels: int,
        channels: int = 64,
        layers: int = 5,
        kernel: int = 3,
    ):
        super().__init__(shape, levels)
        levels = self.levels  # checked
        if len(self.shape) != 2:
            raise ValueError(f"PixelCNN needs an image shape (H, W), got {shape!r}")
        channels = checks.integer(channels, "channels")
        layers = checks.integer(layers, "layers")
        kernel = checks.integer(kernel, "kernel")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centre pixel to mask), got {kernel}")
        self.embedding = nn.Embedding(levels, channels)
        self.first = _MaskedConv2d("A", channels, channels, 2 * (kernel // 2) + 3)
        self.blocks = nn.ModuleList(
            _MaskedConv2d("B", channels, channels, kernel) for _ in range(layers - 1)
        )
        self.out = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, levels, 1)
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embedding(x.reshape(len(x), *self.shape)).permute(0, 3, 1, 2)
        h = self.first(h)
        for block in self.blocks:
            h = h + block(F.relu(h))
        return self.out(h).permute(0, 2, 3, 1).reshape(len(x), self.d, self.levels)


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then an MLP.

    The attention's weights live in an ``nn.MultiheadAttention`` (so saved models keep
    their keys); the block computes it with ``scaled_dot_product_attention``, causal
    through ``is_causal`` (no mask tensor), and, for sampling, one position at a time
    against a cache of the earlier positions' keys and values (:meth:`step`).
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    def _qkv(self, a: torch.Tensor):
        """Queries, keys and values ``(B, heads, T, dim / heads)`` of ``a`` ``(B, T, dim)``."""
        b, t, dim = a.shape
        heads = self.attn.num_heads
        qkv = F.linear(a, self.attn.in_proj_weight, self.attn.in_proj_bias)
        return qkv.view(b, t, 3, heads, dim // heads).permute(2, 0, 3, 1, 4).unbind(0)

    def _out(self, h: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        b, heads, t, width = o.shape
        h = h + self.attn.out_proj(o.transpose(1, 2).reshape(b, t, heads * width))
        return h + self.mlp(self.norm2(h))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(self.norm1(h))
        drop = self.attn.dropout if self.training else 0.0
        return self._out(h, F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True))

    def step(
        self, h: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor], t: int
    ) -> torch.Tensor:
        """The block at position ``t`` alone (``h`` ``(B, 1, dim)``), given the keys and
        values of positions ``< t`` in ``cache`` (``(B, heads, d, dim / heads)`` each),
        to which it writes its own. Evaluation only (no dropout)."""
        q, k, v = self._qkv(self.norm1(h))
        keys, values = cache
        keys[:, :, t : t + 1], values[:, :, t : t + 1] = k, v
        seen = keys[:, :, : t + 1], values[:, :, : t + 1]
        return self._out(h, F.scaled_dot_product_attention(q, *seen))


def _drop_causal_mask(state_dict, prefix, *args) -> None:
    state_dict.pop(prefix + "causal", None)


class PixelTransformer(AutoregressiveModel):
    """Image GPT in miniature: tokens are values, shifted right behind a start token,
    plus learned position embeddings, through causal self-attention blocks."""

    def __init__(
        self,
        shape: Sequence[int],
        levels: int,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__(shape, levels)
        levels = self.levels  # checked
        dim, heads = checks.integer(dim, "dim"), checks.integer(heads, "heads")
        layers = checks.integer(layers, "layers")
        dropout = checks.number(dropout, "dropout", low=0, high=1, high_open=True)
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.token = nn.Embedding(levels + 1, dim)  # index `levels` is the start symbol
        self.position = nn.Parameter(0.02 * torch.randn(self.d, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, levels)
        # Models saved before attention became causal by is_causal kept a mask buffer.
        self._register_load_state_dict_pre_hook(_drop_causal_mask)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        start = torch.full((len(x), 1), self.levels, dtype=torch.long, device=x.device)
        tokens = torch.cat([start, x[:, :-1]], 1)  # position i sees the start and x_<i
        h = self.token(tokens) + self.position
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))

    def _fill(self, flat: torch.Tensor, known: list, todo: list, noise) -> None:
        """Draw the positions ``todo`` (in raster order) one per network pass, each
        attending to the cached keys and values of the positions before it: ``d``
        passes over one token each, where the generic sampler reruns the network over
        all ``d`` tokens for every position. The same draws as the generic sampler, up
        to round-off in the logits."""
        if not todo:
            return
        b, dim = len(flat), self.position.shape[1]
        heads = self.blocks[0].attn.num_heads if len(self.blocks) else 1
        caches = [
            tuple(self.position.new_empty(b, heads, self.d, dim // heads) for _ in range(2))
            for _ in self.blocks
        ]  # fmt: skip
        token = torch.full((b,), self.levels, dtype=torch.long, device=flat.device)
        i = 0
        for pos in range(todo[-1] + 1):
            h = (self.token(token) + self.position[pos])[:, None]
            for block, cache in zip(self.blocks, caches, strict=True):
                h = block.step(h, cache, pos)
            if not known[pos]:
                probs = torch.softmax(self.head(self.norm(h[:, 0])), -1)
                flat[:, pos] = (probs / noise.next(i)).argmax(-1)
                i += 1
            token = flat[:, pos]
