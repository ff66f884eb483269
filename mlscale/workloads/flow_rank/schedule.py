"""The seed's schedule around the runner's epochs, driven by the validation loss every rank shares.

- Backbone frozen until epoch `--unfreeze-after`: its parameter group has learning rate 0 and no
  momentum, so it does not move (and gathers no momentum) while the head learns. Its gradients are
  still computed: DDP, Horovod and the mpi backend then average the same parameters every step,
  which switching `requires_grad` after wrapping would break.
- ReduceLROnPlateau on the validation loss (patience 1, factor 0.5 in the seed).
- The best-validation model: a copy of the weights whenever the validation loss improves; after
  the last epoch it is put back into the model, so `--infer` and `--save-weights` use it.
"""

from __future__ import annotations

import math

import torch

MOMENTUM = 0.9


def param_groups(params, backbone: torch.nn.Module) -> list[dict]:
    """[backbone, head] parameter groups of `params` (the wrapped model's, in its order)."""
    mine = {id(p) for p in backbone.parameters()}
    params = list(params)
    return [{"params": [p for p in params if id(p) in mine]}, {"params": [p for p in params if id(p) not in mine]}]


class Schedule:
    def __init__(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, unfreeze_after: int,
                 patience: int, factor: float, epochs: int):  # fmt: skip
        self.optimizer, self.model = optimizer, model
        self.backbone, self.head = optimizer.param_groups
        self.unfreeze_after, self.epochs = unfreeze_after, epochs
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", patience=patience, factor=factor)
        self.epoch = 0
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_figures: dict = {}
        if unfreeze_after > 0:
            self.backbone.update(lr=0.0, momentum=0.0)

    def state_dict(self) -> dict:
        """What a resumed run needs (the parameter groups' rates and momentum are the optimizer's)."""
        keep = ("epoch", "best_loss", "best_epoch", "best_state", "best_figures")
        return {"plateau": self.plateau.state_dict(), **{k: getattr(self, k) for k in keep}}

    def load_state_dict(self, state: dict) -> None:
        self.plateau.load_state_dict(state.pop("plateau"))
        for key, value in state.items():
            setattr(self, key, value)

    @property
    def frozen(self) -> bool:
        return self.epoch < self.unfreeze_after

    def end_epoch(self, val_loss: float, figures: dict) -> dict:
        """After an epoch's validation (same `val_loss` on every rank): keep the best weights, step the
        plateau schedule, unfreeze on time, restore the best after the last epoch. Returns what to record."""
        frozen = self.frozen  # during the epoch that just ended
        self.epoch += 1
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_figures = val_loss, self.epoch, dict(figures)
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        lr = self.head["lr"]
        self.plateau.step(val_loss)
        if self.epoch == self.unfreeze_after:
            self.backbone.update(lr=self.head["lr"], momentum=MOMENTUM)
        restored = self.epoch == self.epochs and self.best_state is not None and self.best_epoch != self.epoch
        if restored:
            self.model.load_state_dict(self.best_state)
        return {
            "lr": lr,
            "backbone_frozen": float(frozen),
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_loss,
            **{f"best_{k}": v for k, v in self.best_figures.items() if k.startswith("tau_")},
        }
