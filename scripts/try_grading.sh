#!/bin/bash
# A new teacher's first try, in smoke mode: generate the student versions, make five submissions of
# homework 2-8 (right; right in other words; wrong; broken JSON; a cell that raises), grade them.
#   git clone REPO course && cd course && python3 -m venv .venv && .venv/bin/pip install -e ".[cpu,grade]"
#   scripts/try_grading.sh          # writes submissions/ and grades-2-8/ in the current directory
set -e
export COURSE_SMOKE=1 OMP_NUM_THREADS=1
start=$(date +%s)
.venv/bin/python -m course homework generate
git status --short notebooks/homework   # nothing: the committed versions are the generated ones
rm -rf submissions grades-2-8 && mkdir submissions
.venv/bin/python - <<'PY'
import nbformat
def make(name, answers, extra=None):
    nb = nbformat.read("notebooks/homework/2-8.ipynb", as_version=4)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "answers":
            c.source = answers
    if extra:
        nb.cells.insert(2, nbformat.v4.new_code_cell(extra))
    nbformat.write(nb, f"submissions/{name}.ipynb")
make("alice", 'my_verdict = "over-fitting"\nmy_best_epoch = 7\nmy_weight_decay = 0\nmy_patience = 3\n'
              'my_reason = "train acc 1.0 but val acc 0.80; val loss lowest at epoch 7 then rises"')
make("bob", 'my_verdict = "过拟合了"\nmy_best_epoch = 7.0\nmy_weight_decay = "0"\nmy_patience = 3.0\nmy_reason = "看曲线"')
make("carol", 'my_verdict = "under-fitting"\nmy_best_epoch = 20\nmy_weight_decay = 0\nmy_patience = 50\nmy_reason = ""')
make("eve", 'my_verdict = "overfit"\nmy_best_epoch = 7\nmy_weight_decay = 0\nmy_patience = 3\nmy_reason = ""',
     extra="import nonexistent_module_for_homework")
open("submissions/dave.ipynb", "w").write('{"cells": [{"cell_type": "code", "source": "my_verdict = ')
PY
.venv/bin/python -m course grade 2-8 submissions/*.ipynb --out grades-2-8
end=$(date +%s)
echo "ELAPSED $((end - start)) s"
cat grades-2-8/grades.csv
