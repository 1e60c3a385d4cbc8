"""Per-student versions of a homework: each student gets a variant with its own right answers.

The source notebooks and their keys ship in a public package, so the public version's answer is known to
everyone, and a classmate's answer is the right answer. A teacher therefore hands out personal versions:

    python -m course homework generate --roster roster.txt --dest handout/     # one notebook per student

Each personal notebook carries, in its metadata, ``course_homework = {"id", "student", "variant",
"signature"}``: the variant (2-8: the given run's seed; 2-3: which three optimizers to compare) is chosen from
the homework's pool by a keyed hash of the student's name, and the signature is an HMAC-SHA256 of
(homework, student, variant) under the teacher's secret. Grading recomputes the signature: a variant that was
edited, or a notebook copied from another student (the name no longer matches the signature), is marked; the
answers are graded against a measurement of the notebook's own variant; an answer that is wrong for it but
right for another variant of the class is marked as someone else's. The public version (no variant) stays a
study aid, graded against the default variant.

The secret lives in one file only the teacher can read (``~/.config/paddle-mnist-course/grading-secret``,
mode 600, made on first use; ``--secret FILE`` to share one between machines). It never enters a sandbox.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

from ..errors import CourseError

DEFAULT_SECRET = Path("~/.config/paddle-mnist-course/grading-secret")
VARIANT_LINE = re.compile(r"^HOMEWORK_VARIANT\s*=.*$", re.M)


def secret_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("COURSE_GRADING_SECRET") or DEFAULT_SECRET).expanduser()


def load_secret(path: str | Path | None = None, *, create: bool = False) -> bytes:
    """The teacher's secret (bytes); with ``create``, a new random one is written (mode 600) when missing."""
    path = secret_path(path)
    if not path.exists():
        if not create:
            raise CourseError(f"no grading secret at {path}: generate the students' versions first "
                              "(python -m course homework generate --roster FILE), or pass --secret FILE.")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    text = path.read_text(encoding="utf-8").strip()
    if len(text) < 32:
        raise CourseError(f"the grading secret {path} is shorter than 32 characters: delete it to make a new one "
                          "(the students' versions made with it can then no longer be verified).")
    return text.encode("utf-8")


def _canonical(*parts) -> bytes:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: bytes, homework: str, student: str, variant: dict) -> str:
    return hmac.new(secret, _canonical("variant", homework, student, variant), hashlib.sha256).hexdigest()


def mac(secret: bytes, *parts) -> str:
    """A keyed checksum of any JSON-able parts (the re-training cache's entries use it)."""
    return hmac.new(secret, _canonical("cache", *parts), hashlib.sha256).hexdigest()


def choose(module, homework: str, student: str, secret: bytes) -> dict:
    """The variant of ``student``: a keyed hash picks one from the homework's pool (``module.variant_pool()``)."""
    pool = module.variant_pool()
    digest = hmac.new(secret, _canonical("choose", homework, student), hashlib.sha256).digest()
    return pool[int.from_bytes(digest[:8], "big") % len(pool)]


def personalize(nb, homework: str, student: str, variant: dict, secret: bytes):
    """``nb`` (a student version) made personal: the variant in the metadata, signed, and in the code."""
    import copy
    nb = copy.deepcopy(nb)
    nb.metadata["course_homework"] = {"id": homework, "student": student, "variant": variant,
                                      "signature": sign(secret, homework, student, variant)}
    line = f"HOMEWORK_VARIANT = {variant!r}   # 你的个人版本（{student}）：请不要修改"
    for cell in nb.cells:
        if cell.cell_type == "code" and VARIANT_LINE.search(cell.source):
            cell.source = VARIANT_LINE.sub(line.replace("\\", "\\\\"), cell.source, count=1)
            return nb
    raise CourseError(f"homework {homework}'s student notebook has no `HOMEWORK_VARIANT = ...` line to personalize.")


def read_roster(path: str | Path) -> list[str]:
    """Student names, one per line (a CSV's first column; blank lines and # comments skipped)."""
    names = []
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        name = line.split(",")[0].strip()
        if name and not name.startswith("#"):
            names.append(name)
    if not names:
        raise CourseError(f"the roster {path} lists no student: one name (or id) per line.")
    if len(set(names)) != len(names):
        raise CourseError(f"the roster {path} lists a name twice: each student needs a unique name or id.")
    return names


def verify(metadata, secret: bytes | None, homework: str) -> tuple[str, dict, str]:
    """(state, variant, student) of a submission's metadata: state is "public" (no variant), "signed" (checks
    out), "unsigned" (variant but no secret to check it with) or "forged" (signature wrong)."""
    info = metadata.get("course_homework") if isinstance(metadata, dict) else None
    if not isinstance(info, dict) or "variant" not in info:
        return "public", {}, ""
    variant, student, signature = info.get("variant"), info.get("student"), info.get("signature")
    if not isinstance(variant, dict) or not isinstance(student, str) or not isinstance(signature, str):
        return "forged", {}, str(student)[:100] if student is not None else ""
    if secret is None:
        return "unsigned", variant, student
    if hmac.compare_digest(signature, sign(secret, homework, student, variant)):
        return "signed", variant, student
    return "forged", variant, student
