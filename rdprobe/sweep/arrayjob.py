"""`--shard auto`: K and N from the array-job runner this process runs under.

Each runner numbers its tasks in an environment variable it sets itself:

* Kubernetes Indexed Job (``completionMode: Indexed``): ``JOB_COMPLETION_INDEX``, 0-based. The
  pod is not told ``spec.completions``, so N comes from ``--shards N``.
* Slurm job array (``sbatch --array``): ``SLURM_ARRAY_TASK_ID`` with ``SLURM_ARRAY_TASK_MIN``,
  ``SLURM_ARRAY_TASK_STEP`` and ``SLURM_ARRAY_TASK_COUNT`` (``--array=1-8``, ``0-31:4`` and
  ``5-9`` all work; an uneven list such as ``1,3,7`` cannot be numbered and is refused).
* AWS Batch array job: ``AWS_BATCH_JOB_ARRAY_INDEX``, 0-based, and ``AWS_BATCH_JOB_ARRAY_SIZE``.
* GNU parallel: ``PARALLEL_SEQ``, the job's sequence number ``{#}`` from 1, with N from
  ``--shards N``. Not the job slot ``{%}`` / ``PARALLEL_JOBSLOT``: a slot is reused as soon as
  its job ends (``parallel -j2`` runs jobs 1, 2, 3 in slots 1, 1, 2 when they are quick), so two
  jobs would take the same shard.

Runners nest (GNU parallel inside a Slurm task): when more than one is found the choice would be
a guess, so it is refused with a line naming them.
"""

from __future__ import annotations

from collections.abc import Mapping

from rdprobe.live.target import TargetError


def _int(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise TargetError(f"--shard auto: {name}={text!r} is not a task number")
    return int(text)


def _slurm(env: Mapping[str, str]) -> tuple[int, int | None]:
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    assert task is not None
    low = _int(env, "SLURM_ARRAY_TASK_MIN") or 0
    step = _int(env, "SLURM_ARRAY_TASK_STEP") or 1
    count = _int(env, "SLURM_ARRAY_TASK_COUNT")
    if task < low or (task - low) % step:
        raise TargetError(
            f"--shard auto: Slurm task {task} is not on the array's steps ({low}, step {step}):"
            " give --array as FIRST-LAST[:STEP], or --shard K/N yourself"
        )
    high = _int(env, "SLURM_ARRAY_TASK_MAX")
    if count is not None and high is not None and (high - low) // step + 1 != count:
        raise TargetError(
            f"--shard auto: the Slurm array {low}-{high}:{step} does not have {count} evenly"
            " stepped tasks: give --array as FIRST-LAST[:STEP], or --shard K/N yourself"
        )
    return (task - low) // step + 1, count


def from_env(env: Mapping[str, str], shards: int | None) -> tuple[int, int]:
    """(K, N) of this task; ``shards`` is ``--shards N`` (None when not given)."""
    found: list[tuple[str, int, int | None]] = []
    if "JOB_COMPLETION_INDEX" in env:
        index = _int(env, "JOB_COMPLETION_INDEX")
        if index is not None:
            found.append(("Kubernetes JOB_COMPLETION_INDEX", index + 1, None))
    if env.get("SLURM_ARRAY_TASK_ID", "").strip():
        k, count = _slurm(env)
        found.append(("Slurm SLURM_ARRAY_TASK_ID", k, count))
    index = _int(env, "AWS_BATCH_JOB_ARRAY_INDEX")
    if index is not None:
        found.append(
            (
                "AWS Batch AWS_BATCH_JOB_ARRAY_INDEX",
                index + 1,
                _int(env, "AWS_BATCH_JOB_ARRAY_SIZE"),
            )
        )
    seq = _int(env, "PARALLEL_SEQ")
    if seq is not None:
        found.append(("GNU parallel PARALLEL_SEQ", seq, None))
    if not found:
        raise TargetError(
            "--shard auto: no array-job index found (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID,"
            " AWS_BATCH_JOB_ARRAY_INDEX, PARALLEL_SEQ): give --shard K/N"
        )
    if len(found) > 1:
        names = " and ".join(name for name, _, _ in found)
        raise TargetError(f"--shard auto: both {names} are set: give --shard K/N")
    name, k, count = found[0]
    if shards is not None and count is not None and shards != count:
        raise TargetError(f"--shard auto: --shards {shards} but {name} says {count} tasks")
    n = shards if shards is not None else count
    if n is None:
        raise TargetError(f"--shard auto: {name} gives no task count: add --shards N")
    if not 1 <= k <= n:
        raise TargetError(f"--shard auto: {name} is task {k} of {n} (from 1): check --shards")
    return k, n
