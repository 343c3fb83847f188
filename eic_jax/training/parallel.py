"""Data parallelism on JAX's SPMD runtime: one code path from one CPU to many hosts.

A one-axis mesh spans every device of every process. Batches are sharded along its `data` axis;
parameters and optimiser state are replicated. Each process reads its own shard of the input
files and contributes its part of every global batch.
"""

from typing import Any, Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

DATA_AXIS = "data"


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Starts JAX's distributed runtime; without arguments it detects the cluster (TPU pods,
  SLURM, Open MPI) as jax.distributed.initialize does."""
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


def create_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.array(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def local_batch_size(batch_size: int, mesh: Mesh) -> int:
  """This process's share of the global `batch_size`; it must split evenly over the devices."""
  if batch_size % mesh.size:
    raise ValueError(f"batch_size {batch_size} is not divisible by the {mesh.size} devices; "
                     f"use a multiple of {mesh.size}")
  return batch_size // jax.process_count()


def global_batch(local: np.ndarray, mesh: Mesh) -> jax.Array:
  """Assembles the global batch from every process's local part."""
  return jax.make_array_from_process_local_data(batch_sharding(mesh), local)


def shard(items: Sequence, index: int | None = None, count: int | None = None) -> list:
  """This process's share of `items` (every count-th from index): disjoint, together complete."""
  index = jax.process_index() if index is None else index
  count = jax.process_count() if count is None else count
  return list(items[index::count])


def to_host(tree: Any) -> Any:
  """NumPy copies of replicated arrays, also when other hosts hold some of their devices."""
  return jax.tree_util.tree_map(lambda a: np.asarray(a.addressable_data(0)), tree)
