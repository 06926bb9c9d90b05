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
    # Every response token but EOC, for LM losses and log-probs (M tokens in all):
    token_from: torch.Tensor  # [M, 2] long: (row, position) whose logits predict the token
    token_id: torch.Tensor  # [M] long: the token
    token_owner: torch.Tensor  # [M] long: which of the N responses it belongs to

    def to(self, device) -> PackedBatch:
        return PackedBatch(
            self.input_ids.to(device),
            self.allowed.to(device),
            self.position_ids.to(device),
            self.reward_at.to(device),
            self.response_of,
            self.token_from.to(device),
            self.token_id.to(device),
            self.token_owner.to(device),
        )


def pack(groups: list[Group], *, pad: int) -> PackedBatch:
    """Pack groups into rows (one per group), right-padded to the longest row."""
    width = max(len(g.context) + sum(map(len, g.responses)) for g in groups)
    rows = len(groups)
    ids = torch.full((rows, width), pad, dtype=torch.long)  # [B, T]
    segment = torch.full((rows, width), -1, dtype=torch.long)  # [B, T] 0 context, k+1 resp k
    positions = torch.zeros((rows, width), dtype=torch.long)  # [B, T]
    reward_at, response_of = [], []
    token_from, token_id, token_owner = [], [], []
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
            # token t of the response is predicted at the context's last position (t = 0),
            # else at t - 1; without a context (cut away) the first token has no predictor
            for t in range(0 if n else 1, size - 1):
                token_from.append((row, n - 1 if t == 0 else at + t - 1))
                token_id.append(response[t])
                token_owner.append(len(response_of))
            reward_at.append((row, at + size - 1))
            response_of.append((row, k))
            at += size
    causal = torch.ones((width, width), dtype=torch.bool).tril()  # [T, T]
    query, key = segment[:, :, None], segment[:, None, :]  # [B, T, 1], [B, 1, T]
    same = (query == key) | ((key == 0) & (query >= 0))  # own segment, or the context
    allowed = causal & same & (key >= 0)  # [B, T, T]
    # a pad query must attend something or softmax gives NaN: let it see itself
    allowed |= torch.eye(width, dtype=torch.bool) & (query < 0)
    return PackedBatch(
        ids,
        allowed[:, None],
        positions,
        torch.tensor(reward_at, dtype=torch.long),
        response_of,
        torch.tensor(token_from, dtype=torch.long).view(-1, 2),
        torch.tensor(token_id, dtype=torch.long),
        torch.tensor(token_owner, dtype=torch.long),
    )


def packed_rewards(pm: PreferenceModel, batch: PackedBatch) -> torch.Tensor:
    """Rewards [N] of every response in the batch, in ``batch.response_of`` order."""
    return rewards_from(pm, packed_hidden(pm, batch), batch)


def packed_hidden(pm: PreferenceModel, batch: PackedBatch) -> torch.Tensor:
    """The trunk's last hidden states [B, T, H] of a packed batch."""
    from training.prefix import attention_mask

    return pm.trunk(
        input_ids=batch.input_ids,
        attention_mask=attention_mask(pm.lm, batch.allowed).to(batch.input_ids.device),
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state  # [B, T, H]


def rewards_from(pm: PreferenceModel, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    final = hidden[batch.reward_at[:, 0], batch.reward_at[:, 1]]  # [N, H]
    return pm.value_head(final.to(pm.value_head.weight.dtype)).squeeze(-1).float()  # [N]


def token_logprobs(pm: PreferenceModel, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    """log P(token) [M] of every response token (EOC excluded), from the LM head. Only the
    M predicting positions go through the head, never all [B, T] (V is large)."""
    at = hidden[batch.token_from[:, 0], batch.token_from[:, 1]]  # [M, H]
    logits = pm.lm.get_output_embeddings()(at).float()  # [M, V]
    return logits.log_softmax(-1).gather(1, batch.token_id[:, None])[:, 0]  # [M]


def mean_logprobs(pm: PreferenceModel, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    """Mean per-token log-prob [N] of each response (imitation learning compares these)."""
    values = token_logprobs(pm, hidden, batch)  # [M]
    n = len(batch.response_of)
    sums = torch.zeros(n, device=values.device).index_add_(0, batch.token_owner, values)
    counts = torch.zeros(n, device=values.device).index_add_(
        0, batch.token_owner, torch.ones_like(values)
    )
    return sums / counts.clamp(min=1)
