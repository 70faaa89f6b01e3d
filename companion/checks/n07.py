"""Exercise checks of notebook 07."""
from __future__ import annotations

from ..core.models import count_parameters, load_model
from ..engine.layered import ULMFIT_DECAY, freeze_lower
from ..lessons.n07_layered import adam_state_explanation
from . import Verdict, check_close, check_equal, check_prediction, exercise


@exercise("07", "adam_state_prediction")
def check_adam_state_prediction(answer, measured: int, trainable: int, total: int, tensors: int) -> Verdict:
    """Predict-then-measure: AdamW's state bytes after one step with the lower layers frozen (within 1 %)."""
    return check_prediction(answer, measured, "adam_state_prediction",
                            adam_state_explanation(measured, trainable, total, tensors), rtol=0.01)


@exercise("07", "trainable_after_freeze")
def check_trainable_after_freeze(answer, model_name: str, k: int) -> bool:
    """Exercise: trainable parameters after freezing the embeddings and the lowest k layers."""
    model = freeze_lower(load_model(model_name, "classifier", num_labels=5), k)
    return check_equal(answer, count_parameters(model)["trainable"], "trainable_after_freeze",
                       "add up the parameters of the parts above layer k-1 (parameter_shares lists every part)")


@exercise("07", "layer0_lr")
def check_layer0_lr(answer, head_lr: float, n_layers: int = 6, decay: float = ULMFIT_DECAY) -> bool:
    """Exercise: the discriminative learning rate of the lowest encoder layer."""
    return check_close(answer, head_lr / decay ** n_layers, "layer0_lr", "the head has the peak rate; every step "
                       "down (layer_5, layer_4, …, layer_0) divides by 2.6", atol=0, rtol=1e-6)


@exercise("07", "gradual_parts")
def check_gradual_parts(answer, epoch: int, n_layers: int = 6) -> bool:
    """Exercise: which parts train in a given epoch (0-based) of gradual unfreezing."""
    expected = [f"layer_{i}" for i in range(max(0, n_layers - epoch), n_layers)] + ["head"]
    if epoch > n_layers:
        expected = ["embeddings"] + expected
    return check_equal(answer, expected, "gradual_parts", "epoch 0 trains the head only; each epoch adds the next "
                       "layer from the top, listed bottom to top like trainable_parts()")
