"""How much a change that does nothing moves homework 2-8's graded number: the FIX_MARGIN of hw2_8.

    python docs/sweeps/homework-2-8/measure_nulls.py --val_subset 0   >> course/homework/data/2-8/nulls.csv   # full mode
    python docs/sweeps/homework-2-8/measure_nulls.py --val_subset 500 >> course/homework/data/2-8/nulls.csv   # smoke mode
    (the first call writes the header: --header)

Grading compares a student's fix with the given run *paired*: same seed, same initial weights, same batch
order. What is left to chance is how the run's path reacts to any change at all. A weight decay of 1e-8
to 1e-6 is far too small to regularize anything, yet it changes the optimizer's arithmetic, and over the
run's 260 Adam steps the final validation loss moves a little (0.4-0.9 % here: README.md beside this
file). Those "null fixes" give the paired noise; a real fix must move the number by more than twice it. One CSV row per
null fix: val_subset, weight_decay, final_val_loss, the given run's final_val_loss, relative change.
"""
import argparse
import csv
import sys

from course.homework import hw2_8

NULL_DECAYS = "1e-8,3e-8,1e-7,3e-7,1e-6"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--val_subset", type=int, default=0, help="0 = all 10,000 validation images (full mode)")
    parser.add_argument("--weight_decay", default=NULL_DECAYS, help="the null fixes (tiny L2 coefficients)")
    parser.add_argument("--header", action="store_true", help="print the CSV header first")
    args = parser.parse_args()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if args.header:
        writer.writerow(["val_subset", "weight_decay", "final_val_loss", "given_final_val_loss", "relative_change"])
    given = hw2_8.run_summary(0.0, 0, val_subset=args.val_subset)
    for wd in [float(w) for w in args.weight_decay.split(",") if w]:
        null = hw2_8.run_summary(wd, 0, val_subset=args.val_subset)
        writer.writerow([args.val_subset, f"{wd:g}", null["final_val_loss"], given["final_val_loss"],
                         null["final_val_loss"] / given["final_val_loss"] - 1])
        sys.stdout.flush()


if __name__ == "__main__":
    main()
