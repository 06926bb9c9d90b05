"""Prefix-shared packed batches: one row per context holding all K of its responses.

A row is ``[context, response_1 + EOC, …, response_K + EOC]`` (DESIGN §4). A 4-D boolean
mask lets each response see the context and itself only, and its position ids restart at
the context's length, so every response is computed exactly as ``context + response``
alone (to float rounding) while the context runs once instead of K times. The reward of
response k is read at its EOC token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models_backend.reward import PreferenceModel


@dataclass(frozen=True)
class Group:
    context: list[int]  # shared context ids (may be empty after truncation)
    responses: list[list[int]]  # each response's ids, EOC last


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [B, T] long; pads are id ``pad``
    allowed: torch.Tensor  # [B, 1, T, T] bool: query may attend key
    position_ids: torch.Tensor  # [B, T] long
    reward_at: torch.Tensor  # [N, 2] long: (row, position) of each response's EOC, row-major
    response_of: list[tuple[int, int]]  # (group, response) of each of the N rewards

    def to(self, device) -> PackedBatch:
        return PackedBatch(
            self.input_ids.to(device),
            self.allowed.to(device),
            self.position_ids.to(device),
            self.reward_at.to(device),
            self.response_of,
        )


def pack(groups: list[Group], *, pad: int) -> PackedBatch:
    """Pack groups into rows (one per group), right-padded to the longest row."""
    width = max(len(g.context) + sum(map(len, g.responses)) for g in groups)
    rows = len(groups)
    ids = torch.full((rows, width), pad, dtype=torch.long)  # [B, T]
    segment = torch.full((rows, width), -1, dtype=torch.long)  # [B, T] 0 context, k+1 resp k
    positions = torch.zeros((rows, width), dtype=torch.long)  # [B, T]
    reward_at, response_of = [], []
    for row, group in enumerate(groups):
        n = len(group.context)
        ids[row, :n] = torch.tensor(group.context, dtype=torch.long)
        segment[row, :n] = 0
        positions[row, :n] = torch.arange(n)
        at = n
        for k, response in enumerate(group.responses):
            size = len(response)
            ids[row, at : at + size] = torch.tensor(response, dtype=torch.long)
            segment[row, at : at + size] = k + 1
            positions[row, at : at + size] = n + torch.arange(size)
            reward_at.append((row, at + size - 1))
            response_of.append((row, k))
            at += size
    causal = torch.ones((width, width), dtype=torch.bool).tril()  # [T, T]
    query, key = segment[:, :, None], segment[:, None, :]  # [B, T, 1], [B, 1, T]
    same = (query == key) | ((key == 0) & (query >= 0))  # own segment, or the context
    allowed = causal & same & (key >= 0)  # [B, T, T]
    # a pad query must attend something or softmax gives NaN: let it see itself
    allowed |= torch.eye(width, dtype=torch.bool) & (query < 0)
    return PackedBatch(ids, allowed[:, None], positions, torch.tensor(reward_at), response_of)


def packed_rewards(pm: PreferenceModel, batch: PackedBatch) -> torch.Tensor:
    """Rewards [N] of every response in the batch, in ``batch.response_of`` order."""
    from training.prefix import attention_mask

    hidden = pm.trunk(
        input_ids=batch.input_ids,
        attention_mask=attention_mask(pm.lm, batch.allowed).to(batch.input_ids.device),
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state  # [B, T, H]
    final = hidden[batch.reward_at[:, 0], batch.reward_at[:, 1]]  # [N, H]
    return pm.value_head(final.to(pm.value_head.weight.dtype)).squeeze(-1).float()  # [N]
