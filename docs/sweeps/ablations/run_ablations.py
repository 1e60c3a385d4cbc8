"""The chapter 2.8 ablations on full data: BatchNorm, raw inputs, squared-error loss.

    python docs/sweeps/ablations/run_ablations.py      # about 20 minutes on the 2-core CPU, 2 runs at a time

Each run changes one thing of the main job's recipe (Adam, one-cycle to 0.008, batch 64),
trained for 2 epochs on the first 50k images, validated on the last 10k, tested on the test set.
"""
from course import Config
from course.sweep import run_sweep

BASE = Config(optimizer="adam", lr=0.008, schedule="onecycle", batch_size=64, num_epochs=2, seed=0,
              visualdl=False)
VARIANTS = [{}, {"batch_norm": True}, {"normalize": False}, {"normalize": False, "batch_norm": True},
            {"loss": "mse"}]

if __name__ == "__main__":  # the sweep's worker processes import this file
    run_sweep(BASE, VARIANTS, "runs/ablations", jobs=2)
