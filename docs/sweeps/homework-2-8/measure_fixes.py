"""Which fixes of homework 2-8 pass its check: the evidence behind the teacher note's list of right answers.

    python docs/sweeps/homework-2-8/measure_fixes.py [--val_subset 0] [--weight_decay 0.001,0.003,0.01,0.03,0.1]
        [--patience 2,3,5]

Trains the given run once and then each fix alone (a weight decay without early stopping, or early
stopping without weight decay), grades it with ``hw2_8.check_fix`` and the tolerances of that validation
subset (the same code ``python -m course grade`` uses), and prints one Markdown row per fix.
"""
import argparse
import sys
import time

from course.homework import hw2_8


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--val_subset", type=int, default=0, help="0 = all 10,000 validation images (full mode)")
    parser.add_argument("--weight_decay", default="0.001,0.003,0.01,0.03,0.1")
    parser.add_argument("--patience", default="2,3,5")
    args = parser.parse_args()
    tols = hw2_8.tolerances(args.val_subset)
    cache = {}

    def retrain(wd, patience):
        if (wd, patience) not in cache:
            cache[wd, patience] = hw2_8.run_summary(wd, patience, val_subset=args.val_subset)
        return cache[wd, patience]

    started = time.monotonic()
    given = retrain(0.0, 0)
    print(f"val_subset {args.val_subset}: FIX_MARGIN {tols['FIX_MARGIN']:.1%}, ACC_TOL {tols['ACC_TOL']:.4f}; "
          f"given run: final val loss {given['final_val_loss']:.4f}, acc {given['final_val_acc']:.4f}\n")
    print("| fix | epochs run | final val loss | lower by | final val acc | check |")
    print("|---|---:|---:|---:|---:|---|")
    fixes = [(float(w), 0) for w in args.weight_decay.split(",") if w] + [(0.0, int(p)) for p in args.patience.split(",") if p]
    for wd, patience in fixes:
        check = hw2_8.check_fix(wd, patience, given, retrain, tols)
        fixed = retrain(wd, patience)
        name = f"weight_decay {wd:g}" if wd else f"patience {patience}"
        print(f"| {name} | {fixed['epochs_run']} | {fixed['final_val_loss']:.4f} | "
              f"{1 - fixed['final_val_loss'] / given['final_val_loss']:.1%} | {fixed['final_val_acc']:.4f} | "
              f"{'pass' if check.ok else 'fail'} |", flush=True)
    print(f"\n{len(cache)} runs in {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
