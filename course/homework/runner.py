"""Run one submitted notebook in a fresh kernel, inside the sandbox, and read back its answers.

The kernel is ``course.homework.kernel`` (ipykernel after ``setrlimit``: address space, file size, no core
dumps) started through ``sandbox.Sandbox.wrap``, talking to the grader over Unix sockets in a folder of its
own. The grader keeps every resource bounded whatever the notebook does:

- time: one deadline for the whole notebook;
- output: what the notebook prints is counted, the cell interrupted past ``output_kb`` and the rest dropped;
  no ZeroMQ message larger than ``4 * output_kb`` (at least 8 MB) is accepted at all (``zmq.MAXMSGSIZE``: a 300 MB print
  is refused by the socket), and at most 16 messages wait unread (``zmq.RCVHWM``), so a flood is never
  held in the grader's memory;
- processes: when the notebook ends (or fails), the kernel is shut down, then its whole process tree killed
  (in bubblewrap the PID namespace dies with it; in best-effort mode every descendant of the grader not
  there before, detached ones included, since the grader is their subreaper), its folders removed.

Answers are read with a silent request whose ``user_expressions`` convert each answer variable to plain
JSON in the kernel (NumPy / Paddle scalars and 0-D arrays through ``.item()``, other objects as their
``repr``), so a notebook that replaces ``print`` or ``json`` in its own namespace still reports.
"""
from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .sandbox import SANDBOX_HOME, Sandbox, kill_tree

DEFAULTS = {"time_limit": 900.0, "memory_mb": 4096, "output_kb": 1024, "file_mb": 512}
# What libraries (Paddle, IPython, matplotlib, pip) write into HOME on their own: not the notebook's doing.
TOOL_DIRS = {".cache", ".config", ".local", ".ipython", ".jupyter", ".matplotlib", ".paddle", ".visualdl", "work"}
ANSWER_CHARS = 2000   # an answer longer than this is cut (a reason is a sentence or two)
RUNNING: dict = {}    # {"pid": the running kernel's launcher}: what the grader's Ctrl+C handler kills

_REPORT = '''
def __course_grade_answers__(_names=%r, _limit=%d):
    import json
    _g = globals()

    def plain(v, depth=0):
        if v is None or type(v) in (bool, int, float):
            return v
        if type(v) is str:
            return v[:_limit]
        try:
            size = getattr(v, "size", None)
            size = size() if callable(size) else size
            if depth < 2 and hasattr(v, "item") and (size is None or int(size) == 1):
                return plain(v.item(), depth + 1)
        except Exception:
            pass
        try:
            return repr(v)[:_limit]
        except Exception as e:
            return "<repr failed: %%s>" %% type(e).__name__
    return json.dumps({k: plain(_g.get(k)) for k in _names})
'''


class Run:
    """What happened when a submission ran: its answers (or None), a status and what went wrong."""

    def __init__(self):
        self.answers: dict | None = None
        self.status = "ok"
        self.problems: list[str] = []
        self.peak_descendants = 0

    def problem(self, status: str, message: str) -> None:
        if self.status == "ok":
            self.status = status
        self.problems.append(message)


def _limited_client_class():
    from nbclient import NotebookClient

    class LimitedClient(NotebookClient):
        """NotebookClient with a deadline for the whole notebook and a cap on the output it keeps."""
        output_budget = 0
        over_budget = False

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {})))
            self.output_budget -= size
            if self.output_budget < 0:
                if not self.over_budget:
                    self.over_budget = True
                    asyncio.ensure_future(self.km.interrupt_kernel())   # stop the printing cell
                return None
            return super().output(outs, msg, display_id, cell_index)

    return LimitedClient


def _quiet_log():
    import logging
    log = logging.getLogger("course.grade.kernel")
    log.setLevel(logging.CRITICAL)
    return log


def _kernel_env(home: str, tmp: str, smoke: bool) -> dict:
    """The kernel's whole environment: nothing of the teacher's (tokens, paths) beyond what Python needs."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": home, "USER": "student",
           "MPLBACKEND": "Agg", "COURSE_SMOKE": "1" if smoke else "0", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.matplotlib",
           "XDG_CACHE_HOME": f"{home}/.cache", "XDG_CONFIG_HOME": f"{home}/.config", "TMPDIR": tmp}
    if "COURSE_CPU_LEVERS" in os.environ:
        env["COURSE_CPU_LEVERS"] = os.environ["COURSE_CPU_LEVERS"]
    return env


def _kernel_manager(root: Path, sandbox: Sandbox, home: Path, limits: dict):
    import zmq
    import zmq.asyncio
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    conn = root / "conn"
    conn.mkdir()
    argv = [sys.executable, "-m", "course.homework.kernel", str(limits["memory_mb"] << 20),
            str(limits["file_mb"] << 20), "-f", "{connection_file}"]
    spec = root / "kernels" / "course-grade"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": sandbox.wrap(argv, home=home, private=[conn]), "display_name": "course grading",
        "language": "python", "interrupt_mode": "message"}), encoding="utf-8")
    class Manager(AsyncKernelManager):
        def client(self, **kwargs):   # the client's sockets must come from the limited context below
            kwargs.setdefault("context", self.context)
            return super().client(**kwargs)

    km = Manager(kernel_name="course-grade", transport="ipc", ip=str(conn / "k"),
                 kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(root / "kernels")]))
    km.connection_file = str(conn / "kernel.json")
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, max(4 * limits["output_kb"] * 1024, 8 << 20))
    # ZeroMQ queues what arrives faster than it is read, up to RCVHWM messages (1,000 by default: a flood
    # split into 1 MB messages would sit in the grader's memory as 1 GB). Past 16 a subscriber drops them:
    # output beyond the budget is discarded anyway. At most 16 x 8 MB wait unread.
    context.setsockopt(zmq.RCVHWM, 16)
    context.setsockopt(zmq.LINGER, 0)
    km.context = context
    return km


def run_submission(nb, variables, *, sandbox: Sandbox, smoke: bool, time_limit=DEFAULTS["time_limit"],
                   memory_mb=DEFAULTS["memory_mb"], output_kb=DEFAULTS["output_kb"],
                   file_mb=DEFAULTS["file_mb"]) -> Run:
    """Execute ``nb`` (graded and self-check cells already removed) and read back ``variables``."""
    limits = {"time_limit": time_limit, "memory_mb": memory_mb, "output_kb": output_kb, "file_mb": file_mb}
    root = Path(tempfile.mkdtemp(prefix="course-grade-"))
    # Our own loop rather than asyncio.run: a Ctrl+C of the teacher's must stop the batch (asyncio.run turns it
    # into a cancellation that a library may swallow), and the kernel must still be stopped afterwards.
    loop, kernel = asyncio.new_event_loop(), {}
    main = loop.create_task(_run(nb, list(variables), root, sandbox, smoke, limits, kernel))
    try:
        return loop.run_until_complete(main)
    finally:
        main.cancel()
        try:
            loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        except BaseException:
            pass
        if kernel:
            loop.run_until_complete(_stop(**kernel))
        loop.close()
        shutil.rmtree(root, ignore_errors=True)


async def _run(nb, variables, root: Path, sandbox: Sandbox, smoke: bool, limits: dict, kernel: dict) -> Run:
    """Run the notebook; ``kernel`` gets what ``_stop`` needs as soon as it exists (the caller stops it)."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = Run()
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    home = root / "home"
    (home / "work").mkdir(parents=True)
    (root / "tmp").mkdir()
    inside_home, inside_tmp = (SANDBOX_HOME, "/tmp") if sandbox.mode == "bwrap" else (str(home), str(root / "tmp"))
    km = _kernel_manager(root, sandbox, home, limits)
    before = set() if sandbox.mode == "bwrap" else _our_descendants()
    deadline = time.monotonic() + limits["time_limit"]
    client = _limited_client_class()(
        nb, km=km, allow_errors=True, timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        startup_timeout=120, iopub_timeout=10, resources={"metadata": {"path": str(home / "work")}},
        log=_quiet_log())
    client.output_budget = limits["output_kb"] * 1024
    kernel.update(client=client, km=km, pid=None, keep=before, sandbox=sandbox)
    try:
        async with client.async_setup_kernel(cwd=str(home / "work"), env=_kernel_env(inside_home, inside_tmp, smoke),
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            kernel["pid"] = getattr(getattr(km, "provisioner", None), "pid", None)
            RUNNING["pid"] = kernel["pid"]
            try:
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type == "code":
                        await client.async_execute_cell(cell, index)
                run.answers = await _report(client, variables, deadline)
                if run.answers is None:
                    run.problem("no_answers", "读不到答案变量（内核没有回答读取答案的请求）。")
            except CellTimeoutError:
                run.problem("timeout", f"超过了时间限制 {limits['time_limit']:g} 秒，已被停止（是不是有死循环，或者训练太久？）。")
            except DeadKernelError:
                run.problem("crashed", f"内核崩溃了（最常见的原因是超过了内存限制 {limits['memory_mb']} MB）。")
            except Exception as e:   # e.g. a message that fails its signature check, sent by a kernel out of memory
                run.problem("crashed", f"内核发回的消息读不了（{type(e).__name__}: {str(e)[:120]}；最常见的原因是超过了"
                                       f"内存限制 {limits['memory_mb']} MB）。")
    except RuntimeError as e:   # the kernel died before it could answer (e.g. it killed itself at start-up)
        run.problem("crashed", f"内核没有启动起来或中途退出了（{str(e)[:200]}）。")
    finally:
        RUNNING.clear()
        await _stop(**kernel)
        kernel.clear()
    if client.over_budget:
        run.problem("output_limit", f"输出超过了 {limits['output_kb']} KB，已被中断，多出的输出被丢弃。")
    _cell_errors(run, nb, client.over_budget, limits["memory_mb"])
    outside = sorted(p.name for p in home.iterdir() if p.name not in TOOL_DIRS)
    if outside:
        run.problem("wrote_outside", f"在自己的工作目录之外写了文件（{', '.join(n[:60] for n in outside[:5])}），已丢弃。")
    return run


def _our_descendants() -> set[int]:
    from .sandbox import descendants
    return set(descendants(os.getpid()))


async def _report(client, variables, deadline) -> dict | None:
    """The answers, converted to JSON in the kernel; None when the kernel does not answer in time."""
    code = _REPORT % (variables, ANSWER_CHARS)
    msg_id = client.kc.execute(code, silent=True, store_history=False,
                               user_expressions={"answers": "__course_grade_answers__()"})
    try:
        reply = await asyncio.wait_for(client.async_wait_for_reply(msg_id),
                                       timeout=max(5.0, min(60.0, deadline - time.monotonic())))
    except (asyncio.TimeoutError, Exception):
        return None
    result = ((reply or {}).get("content", {}).get("user_expressions") or {}).get("answers", {})
    if not isinstance(result, dict) or result.get("status") != "ok":
        return None
    try:
        answers = json.loads(ast.literal_eval(result["data"]["text/plain"]))
    except (KeyError, TypeError, ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return {k: answers.get(k) for k in variables} if isinstance(answers, dict) else None


async def _stop(client, km, pid, keep, sandbox) -> None:
    """Shut the kernel down and make sure nothing of it is left: channels, process tree, sockets, context."""
    try:
        if client.kc is not None:
            client.kc.stop_channels()
    except Exception:
        pass
    try:
        if km.has_kernel:
            await asyncio.wait_for(km.shutdown_kernel(now=True), timeout=20)
    except Exception:
        pass
    if pid:
        kill_tree(pid)
    if sandbox.mode == "none":
        kill_tree(None, keep=keep)   # detached processes too: the grader is their subreaper
    try:
        await km.cleanup_resources()
    except Exception:
        pass
    km.context.destroy(linger=0)


def _cell_errors(run: Run, nb, over_budget: bool, memory_mb: int) -> None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            name = str(out.get("ename", ""))[:100]
            if name == "KeyboardInterrupt" and over_budget:
                continue
            memory = name == "MemoryError"
            message = (f"第 {i + 1} 个单元出错：{name}: {str(out.get('evalue', ''))[:200]}"
                       + (f"（超过了内存限制 {memory_mb} MB）" if memory else ""))
            if memory and run.status in ("ok", "crashed"):
                run.status = "memory"
                run.problems.append(message)
            else:
                run.problem("raised", message)
