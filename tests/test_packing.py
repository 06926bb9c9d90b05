"""The prefix-shared packed forward gives the rewards of plain separate forwards."""

import torch

from models_backend.dialogue import HUMAN, Message
from models_backend.reward import encode_responses, pad_right, preference_model_from_spec
from training.packing import Group, mean_logprobs, pack, packed_hidden, packed_rewards


def test_packed_rewards_equal_plain_forward_rewards_within_1e_5():
    pm, tokenizer = preference_model_from_spec("tiny-random", device="cpu")
    with torch.no_grad():  # make the trunk mix positions strongly, so a wrong mask shows
        for name, parameter in pm.named_parameters():
            if "proj" in name:
                parameter.mul_(5)
    dialogues = [
        ([Message(HUMAN, "How do I boil an egg?")], ["Nine minutes.", "No idea", "Use a pan."]),
        ([Message(HUMAN, "Hi")], ["Hello! How can I help you today?", "Go away."]),
    ]
    groups, plain = [], []
    for context, responses in dialogues:
        encoded = encode_responses(tokenizer, context, responses, max_length=512)
        n = encoded.context_length
        groups.append(Group(encoded.sequences[0][:n], [s[n:] for s in encoded.sequences]))
        plain.append(encoded.sequences)
    batch = pack(groups, pad=tokenizer.pad_token_id)
    with torch.no_grad():
        packed = packed_rewards(pm, batch)
        separate = torch.cat([pm(**pad_right(s, pad_id=tokenizer.pad_token_id)) for s in plain])
    assert batch.input_ids.shape[0] == 2  # one row per context
    assert batch.response_of == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert separate.std() > 1e-3  # the rewards differ, so equality means something
    torch.testing.assert_close(packed, separate, atol=1e-5, rtol=0)


def test_each_response_sees_the_context_and_itself_only():
    batch = pack([Group([1, 2], [[3, 9], [4, 5, 9]])], pad=0)
    allowed = batch.allowed[0, 0]
    assert batch.position_ids[0].tolist() == [0, 1, 2, 3, 2, 3, 4]
    assert allowed[4].tolist() == [True, True, False, False, True, False, False]  # 2nd resp.
    assert batch.reward_at.tolist() == [[0, 3], [0, 6]]


def test_packed_token_logprobs_equal_those_of_a_plain_forward():
    pm, tokenizer = preference_model_from_spec("tiny-random", device="cpu")
    context = [Message(HUMAN, "Tell me a joke")]
    encoded = encode_responses(tokenizer, context, ["Why not.", "A horse walks in"], max_length=64)
    n = encoded.context_length
    batch = pack([Group(encoded.sequences[0][:n], [s[n:] for s in encoded.sequences])], pad=0)
    with torch.no_grad():
        got = mean_logprobs(pm, packed_hidden(pm, batch), batch)
        for k, sequence in enumerate(encoded.sequences):
            logits = pm.lm(input_ids=torch.tensor([sequence]), use_cache=False).logits[0]
            logprobs = logits[:-1].log_softmax(-1)[torch.arange(len(sequence) - 1), sequence[1:]]
            expected = logprobs[n - 1 : -1].mean()  # the response's tokens, EOC left out
            torch.testing.assert_close(got[k], expected, atol=1e-5, rtol=0)
