"""Scale-out engines. `work` is engine-neutral (a Job: lazily built runtime + per-item work function);
`ray_engine` runs a Job on Ray Data; `infer_job` is `unetpp infer --engine ray`. Ray is imported only when used."""

from unetpp.core.work import FaultSpec, Job, WorkerContext

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "FaultSpec", "Job", "WorkerContext"]
