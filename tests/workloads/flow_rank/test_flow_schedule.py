"""The seed's schedule: a frozen backbone does not move, unfreezing on time, ReduceLROnPlateau on the
validation loss, and the best-validation weights put back after the last epoch."""

from __future__ import annotations

import torch

from mlscale.workloads.flow_rank.model import RankNet, ranknet_loss, score_pair
from mlscale.workloads.flow_rank.schedule import Schedule, param_groups


def _step(model, optimizer) -> None:
    left, right = torch.randn(4, 3, 24, 32), torch.randn(4, 3, 24, 32)
    ranknet_loss(score_pair(model, left, right), torch.tensor([1.0, 0.0, 0.5, 1.0])).backward()
    optimizer.step()
    optimizer.zero_grad()


def _params(module) -> dict:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_freeze_plateau_and_best_weights():
    torch.manual_seed(0)
    model = RankNet("tiny")
    optimizer = torch.optim.SGD(param_groups(model.parameters(), model.backbone), lr=0.1, momentum=0.9)
    schedule = Schedule(optimizer, model, unfreeze_after=1, patience=1, factor=0.5, epochs=4)
    backbone, head = _params(model.backbone), _params(model.head)
    _step(model, optimizer)
    assert _same(backbone, _params(model.backbone))  # frozen: not one parameter moved
    assert not _same(head, _params(model.head))

    first = schedule.end_epoch(1.0, {"tau_test_in": 0.5})  # epoch 1: the best so far; unfreezes
    assert first["backbone_frozen"] == 1.0 and first["best_epoch"] == 1 and first["best_tau_test_in"] == 0.5
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["momentum"] == 0.9
    kept, kept_state = _params(model.backbone), {k: v.clone() for k, v in model.state_dict().items()}
    _step(model, optimizer)
    assert not _same(kept, _params(model.backbone))  # the backbone learns now

    second = schedule.end_epoch(2.0, {"tau_test_in": 0.1})  # worse once: patience 1
    assert second["backbone_frozen"] == 0.0 and second["best_epoch"] == 1
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.1]
    _step(model, optimizer)
    schedule.end_epoch(3.0, {})  # worse twice: the learning rate halves
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.05]
    _step(model, optimizer)
    last = schedule.end_epoch(2.5, {})  # the last epoch: epoch 1's weights come back
    assert last["best_epoch"] == 1 and _same(kept_state, model.state_dict())
