"""Distillation for low-quality queries (`vidvpr distill`): a student that sees compressed or small
frames learns from a frozen teacher that sees the clean ones (LoQI-VPR; NocPlace's inherited targets).

    losses    ICKD, descriptor MSE, triplet ranking loss and their composite (pure torch functions)
    degrade   `--lq` items: encode cells and on-the-fly degradations (jpeg:Q, resize:NNNp)
    pairs     training sets: a vidvpr dataset's database recordings or a VPR image folder
    teacher   the teacher as `vidvpr eval` prepares it, and the student made from it
    targets   the teacher's descriptors and channel correlations, computed once, cached
    mining    positives by position, hard negatives by the current student
    step      one batch's forward passes and loss
    state     resumable training state and the loss curve
    distributed  several processes (torchrun): the process group, each batch's shares, losses combined
    config    every option with its default; the student's sidecar
    train     the training loop: `distill(out_dir, DistillConfig(...))`
"""
