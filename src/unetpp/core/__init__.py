"""The inference core: one batch driver (driver.py) that every command's work runs on, executors that decide
where it runs (executors.py: this process, or Ray Data actors via ray.py and work.py), and the summary figures
(summary.py). Ray is imported only when used."""

from unetpp.core.driver import BatchWork, DriverResult, DriverSettings
from unetpp.core.executors import ENGINES, LocalExecutor, RayExecutor, run_batches

__all__ = ["ENGINES", "BatchWork", "DriverResult", "DriverSettings", "LocalExecutor", "RayExecutor", "run_batches"]
