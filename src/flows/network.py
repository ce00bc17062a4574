"""A checkpoint's network, in the form it was saved in: float, RepGhostNet / GhostNetV3 (train or deploy form) or
QAT.

Imports MindSpore and the model code: the flows import this module only once they need a network.
"""
from src.deploy import DeployError
from src.errors import DataError
from src.models import (check_input_size, create_model, has_deploy_form, load_checkpoint_strict, read_checkpoint,
                        reparameterize, reparameterizable_cells, saved_deployed)
from src.quant.qat import is_qat_checkpoint, is_qat_network, load_qat_network
from src.record import reconcile


def build_cell(cfg, ckpt_file=""):
    """``(net, record)``: the network of ``cfg.model`` in eval mode, strictly loaded from ``ckpt_file`` when
    given, and the checkpoint's model record (None without one).

    What the checkpoint's model record holds (model, class count, preprocessing) fills ``cfg`` where the user set
    nothing (:func:`src.record.reconcile`). A RepGhostNet / GhostNetV3 network is built in the form its checkpoint was saved in
    and, with ``cfg.deploy``, a train-form one is re-parameterized after loading. A QAT checkpoint (recognised by
    its contents) gives its fake-quant network (:mod:`src.quant`).
    """
    params = record = None
    if ckpt_file:
        params, record = read_checkpoint(ckpt_file)
        reconcile(cfg, ckpt_file, record)
    check_input_size(cfg.model, cfg.image_size)
    if params is not None and is_qat_checkpoint(params, record):
        return load_qat_network(cfg, ckpt_file, params, record), record
    kwargs = {"dropout": cfg.dropout}
    reparam = has_deploy_form(cfg.model)
    if reparam:
        kwargs["deploy"] = bool(cfg.deploy) if params is None else saved_deployed(cfg.model, params)
    net = create_model(cfg.model, num_classes=cfg.num_classes, **kwargs)
    if params is not None:
        try:
            load_checkpoint_strict(net, ckpt_file, params)
        except DataError as exc:
            hint = "" if record else " (a checkpoint without a model record needs --model and --num_classes)"
            raise DeployError(f"checkpoint does not match --model {cfg.model} --num_classes {cfg.num_classes} "
                              f"(another architecture, width or class count?){hint}: {exc}") from None
    if reparam and cfg.deploy:
        reparameterize(net)
    net.set_train(False)
    return net, record


def form_of(net):
    """The record form of a network: 'qat' (fake-quant), 'deploy' (re-parameterized) or 'train'."""
    if is_qat_network(net):
        return "qat"
    return "deploy" if any(deployed for _, deployed in reparameterizable_cells(net)) else "train"


def deploy_for_export(net, keep_train_form=False):
    """Re-parameterize a train-form RepGhostNet / GhostNetV3 for export (unless ``keep_train_form``), saying so."""
    if not all(deployed for _, deployed in reparameterizable_cells(net)):
        if keep_train_form:
            print("keeping the train form (--no_reparam)")
        else:
            reparameterize(net)
            print("re-parameterized to the deploy form (parallel branches fused into one conv each; --no_reparam "
                  "keeps the train form)")
    return net
